//! The model loader answers every kind of bad file with a typed error that names the
//! problem, and never panics.

use std::collections::HashMap;

use cnnviz::model::rng::Rng;
use cnnviz::model::{
    Architecture, InputSpec, LayerParams, LayerSpec, METADATA_KEY, Model, ModelError,
    Normalization, load_model, load_model_bytes, save_model, save_model_bytes,
};
use safetensors::Dtype;
use safetensors::tensor::TensorView;

fn small_architecture() -> Architecture {
    Architecture {
        format: cnnviz::model::spec::ARCHITECTURE_FORMAT.into(),
        version: cnnviz::model::spec::ARCHITECTURE_VERSION,
        name: "tiny".into(),
        input: InputSpec {
            channels: 1,
            height: 8,
            width: 8,
        },
        classes: (0..10).map(|c| c.to_string()).collect(),
        normalization: Normalization::uniform(0.1307, 0.3081),
        preprocessing: None,
        layers: vec![
            LayerSpec::Conv2d {
                name: "conv1".into(),
                in_channels: 1,
                out_channels: 2,
                kernel_size: 3,
                stride: 1,
                padding: 1,
                padding_end: None,
                weight: "conv1.weight".into(),
                bias: Some("conv1.bias".into()),
            },
            LayerSpec::Relu {
                name: "relu1".into(),
            },
            LayerSpec::MaxPool2d {
                name: "pool1".into(),
                kernel_size: 2,
                stride: 2,
            },
            LayerSpec::Flatten {
                name: "flatten".into(),
            },
            LayerSpec::Dense {
                name: "fc".into(),
                in_features: 32,
                out_features: 10,
                weight: "fc.weight".into(),
                bias: Some("fc.bias".into()),
            },
        ],
    }
}

fn random_params(len_w: usize, len_b: usize, rng: &mut Rng) -> LayerParams {
    LayerParams::new(
        (0..len_w).map(|_| rng.uniform(-0.5, 0.5)).collect(),
        (0..len_b).map(|_| rng.uniform(-0.5, 0.5)).collect(),
    )
}

fn small_model() -> Model {
    let mut rng = Rng::new(7);
    let params = vec![
        random_params(18, 2, &mut rng),
        random_params(320, 10, &mut rng),
    ];
    Model::from_parts(small_architecture(), params).expect("valid model")
}

/// A raw tensor for hand-made files: name, dtype, shape, bytes.
type RawTensor = (String, Dtype, Vec<usize>, Vec<u8>);

fn f32_tensor(name: &str, shape: &[usize], value: f32) -> RawTensor {
    let n: usize = shape.iter().product();
    let bytes = (0..n).flat_map(|_| value.to_le_bytes()).collect();
    (name.into(), Dtype::F32, shape.to_vec(), bytes)
}

fn good_tensors() -> Vec<RawTensor> {
    vec![
        f32_tensor("conv1.weight", &[2, 1, 3, 3], 0.1),
        f32_tensor("conv1.bias", &[2], 0.0),
        f32_tensor("fc.weight", &[10, 32], 0.01),
        f32_tensor("fc.bias", &[10], 0.0),
    ]
}

fn file_with(tensors: &[RawTensor], metadata: Option<HashMap<String, String>>) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).expect("view")))
        .collect();
    safetensors::serialize(views, metadata).expect("serialize")
}

fn metadata_json(json: String) -> Option<HashMap<String, String>> {
    Some(HashMap::from([(METADATA_KEY.to_string(), json)]))
}

fn with_architecture(arch: &Architecture, tensors: &[RawTensor]) -> Vec<u8> {
    file_with(
        tensors,
        metadata_json(serde_json::to_string(arch).expect("json")),
    )
}

#[test]
fn save_then_load_round_trips_exactly() {
    let model = small_model();
    let bytes = save_model_bytes(&model).expect("save");
    let loaded = load_model_bytes(&bytes).expect("load");
    assert_eq!(loaded, model);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("m.safetensors");
    save_model(&model, &path).expect("save to file");
    assert_eq!(load_model(&path).expect("load file"), model);
}

#[test]
fn hand_made_pytorch_style_file_loads() {
    let model = load_model_bytes(&with_architecture(&small_architecture(), &good_tensors()))
        .expect("loads");
    assert_eq!(model.parameter_count(), 18 + 2 + 320 + 10);
    assert_eq!(model.conv_blocks().len(), 1);
}

#[test]
fn a_layer_without_bias_loads_with_zero_bias() {
    let mut arch = small_architecture();
    if let LayerSpec::Conv2d { bias, .. } = &mut arch.layers[0] {
        *bias = None;
    }
    let tensors: Vec<RawTensor> = good_tensors()
        .into_iter()
        .filter(|t| t.0 != "conv1.bias")
        .collect();
    let model = load_model_bytes(&with_architecture(&arch, &tensors)).expect("loads");
    assert_eq!(
        model.layers[0].params.as_ref().expect("conv params").bias,
        vec![0.0, 0.0]
    );
}

#[test]
fn truncated_files_are_format_errors() {
    let bytes = save_model_bytes(&small_model()).expect("save");
    for len in [0, 4, 8, 9, 40, bytes.len() / 2, bytes.len() - 1] {
        let err = load_model_bytes(&bytes[..len]).expect_err("truncated");
        assert!(matches!(err, ModelError::Format(_)), "length {len}: {err}");
    }
}

#[test]
fn garbage_header_is_a_format_error() {
    let mut bytes = 20u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{not json at all!!!}");
    assert!(matches!(
        load_model_bytes(&bytes),
        Err(ModelError::Format(_))
    ));
    // A header length far beyond the file.
    let mut bytes = u64::MAX.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{}");
    assert!(matches!(
        load_model_bytes(&bytes),
        Err(ModelError::Format(_))
    ));
}

#[test]
fn missing_metadata_is_named() {
    let err = load_model_bytes(&file_with(&good_tensors(), None)).expect_err("no metadata");
    assert!(matches!(err, ModelError::MissingMetadata { .. }), "{err}");
    assert!(err.to_string().contains("architecture"));
}

#[test]
fn metadata_that_is_not_an_architecture_is_refused() {
    for json in [
        "not json",
        "{}",
        r#"{"format":"cnnviz.sequential"}"#,
        "[1,2,3]",
    ] {
        let err = load_model_bytes(&file_with(&good_tensors(), metadata_json(json.into())))
            .expect_err(json);
        assert!(matches!(err, ModelError::BadMetadata(_)), "{json}: {err}");
    }
    let mut arch = small_architecture();
    arch.format = "keras".into();
    assert!(matches!(
        load_model_bytes(&with_architecture(&arch, &good_tensors())),
        Err(ModelError::BadMetadata(_))
    ));
    let mut arch = small_architecture();
    arch.version = 99;
    let err =
        load_model_bytes(&with_architecture(&arch, &good_tensors())).expect_err("future version");
    assert!(err.to_string().contains("version 99"), "{err}");
}

/// A change that breaks an architecture.
type Edit = Box<dyn Fn(&mut Architecture)>;

#[test]
fn metadata_inconsistent_with_itself_is_refused() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "in_channels",
            Box::new(|a| {
                if let LayerSpec::Conv2d { in_channels, .. } = &mut a.layers[0] {
                    *in_channels = 3
                }
            }),
        ),
        (
            "in_features",
            Box::new(|a| {
                if let LayerSpec::Dense { in_features, .. } = &mut a.layers[4] {
                    *in_features = 31
                }
            }),
        ),
        (
            "flatten",
            Box::new(|a| {
                a.layers.remove(3);
            }),
        ),
        ("classes", Box::new(|a| a.classes.truncate(5))),
        (
            "does not fit",
            Box::new(|a| {
                if let LayerSpec::Conv2d {
                    kernel_size,
                    padding,
                    padding_end: None,
                    ..
                } = &mut a.layers[0]
                {
                    *kernel_size = 13;
                    *padding = 0
                }
            }),
        ),
        (
            "unique",
            Box::new(|a| {
                if let LayerSpec::Relu { name } = &mut a.layers[1] {
                    *name = "conv1".into()
                }
            }),
        ),
        (
            "std",
            Box::new(|a| a.normalization.std = cnnviz::model::spec::ChannelValues::One(0.0)),
        ),
        (
            "normalization has 2 values",
            Box::new(|a| {
                a.normalization.mean = cnnviz::model::spec::ChannelValues::Each(vec![0.1, 0.2])
            }),
        ),
    ];
    for (what, change) in cases {
        let mut arch = small_architecture();
        change(&mut arch);
        let err = load_model_bytes(&with_architecture(&arch, &good_tensors())).expect_err(what);
        assert!(
            matches!(err, ModelError::Inconsistent(_) | ModelError::TooLarge(_)),
            "{what}: {err}"
        );
        assert!(err.to_string().contains(what), "{what}: {err}");
    }
}

#[test]
fn missing_extra_and_misshaped_tensors_are_named() {
    let arch = small_architecture();
    let missing: Vec<RawTensor> = good_tensors()
        .into_iter()
        .filter(|t| t.0 != "fc.weight")
        .collect();
    let err = load_model_bytes(&with_architecture(&arch, &missing)).expect_err("missing");
    assert!(
        matches!(&err, ModelError::MissingTensor(n) if n == "fc.weight"),
        "{err}"
    );

    let mut extra = good_tensors();
    extra.push(f32_tensor("fc2.weight", &[3], 0.0));
    let err = load_model_bytes(&with_architecture(&arch, &extra)).expect_err("extra");
    assert!(
        matches!(&err, ModelError::ExtraTensor(n) if n == "fc2.weight"),
        "{err}"
    );

    let mut wrong = good_tensors();
    wrong[2] = f32_tensor("fc.weight", &[32, 10], 0.0);
    let err = load_model_bytes(&with_architecture(&arch, &wrong)).expect_err("transposed");
    assert!(
        matches!(&err, ModelError::TensorShape { name, .. } if name == "fc.weight"),
        "{err}"
    );
}

#[test]
fn dtypes_other_than_f32_are_refused() {
    for (dtype, width) in [
        (Dtype::F64, 8),
        (Dtype::F16, 2),
        (Dtype::BF16, 2),
        (Dtype::I32, 4),
    ] {
        let mut tensors = good_tensors();
        tensors[1] = ("conv1.bias".into(), dtype, vec![2], vec![0u8; 2 * width]);
        let err = load_model_bytes(&with_architecture(&small_architecture(), &tensors))
            .expect_err("dtype");
        assert!(
            matches!(&err, ModelError::Dtype { name, .. } if name == "conv1.bias"),
            "{dtype:?}: {err}"
        );
    }
}

#[test]
fn non_finite_weights_are_refused() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut tensors = good_tensors();
        tensors[2] = f32_tensor("fc.weight", &[10, 32], 0.01);
        tensors[2].3[40..44].copy_from_slice(&bad.to_le_bytes());
        let err =
            load_model_bytes(&with_architecture(&small_architecture(), &tensors)).expect_err("nan");
        assert!(
            matches!(&err, ModelError::NonFinite { name, index: 10 } if name == "fc.weight"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn absurd_sizes_are_capped_before_allocating() {
    let mut arch = small_architecture();
    arch.input.height = 100_000;
    assert!(matches!(
        load_model_bytes(&with_architecture(&arch, &good_tensors())),
        Err(ModelError::TooLarge(_))
    ));

    let mut arch = small_architecture();
    if let LayerSpec::Dense { out_features, .. } = &mut arch.layers[4] {
        *out_features = usize::MAX / 2;
    }
    assert!(matches!(
        load_model_bytes(&with_architecture(&arch, &good_tensors())),
        Err(ModelError::TooLarge(_))
    ));

    let mut arch = small_architecture();
    arch.layers = (0..100)
        .map(|i| LayerSpec::Relu {
            name: format!("r{i}"),
        })
        .collect();
    assert!(matches!(
        load_model_bytes(&with_architecture(&arch, &[])),
        Err(ModelError::TooLarge(_))
    ));
}

#[test]
fn missing_file_names_the_path() {
    let err =
        load_model(std::path::Path::new("/nonexistent/model.safetensors")).expect_err("missing");
    assert!(
        err.to_string().contains("/nonexistent/model.safetensors"),
        "{err}"
    );
}

#[test]
fn random_byte_flips_never_panic() {
    let bytes = save_model_bytes(&small_model()).expect("save");
    let mut rng = Rng::new(11);
    for _ in 0..2000 {
        let mut copy = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let i = rng.below(copy.len() as u64) as usize;
            copy[i] ^= 1 << rng.below(8);
        }
        // Any result is fine as long as it is a result: a flip in the weights may still load.
        let _ = load_model_bytes(&copy);
    }
}
