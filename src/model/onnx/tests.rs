//! Graphs built message by message, for the cases the exported fixtures do not reach:
//! `auto_pad`, weights in `Constant` nodes, `Gemm` without `transB`, branches, a softmax
//! in the middle, and the error text of each.

use prost::Message;

use super::proto::*;
use super::{ImportOptions, load_onnx_bytes};
use crate::model::{LayerOp, Model, ModelError};

fn attr_ints(name: &str, ints: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        ints: ints.to_vec(),
        ..Default::default()
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        i: Some(i),
        ..Default::default()
    }
}

fn attr_str(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.to_string()),
        s: Some(s.as_bytes().to_vec()),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    output: &str,
    attribute: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.to_string()],
        name: Some(name.to_string()),
        op_type: Some(op.to_string()),
        attribute,
        domain: None,
    }
}

fn floats(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(data_type::FLOAT),
        float_data: values,
        name: Some(name.to_string()),
        ..Default::default()
    }
}

fn ramp(len: usize, scale: f32) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 7919) % 17) as f32 * scale - 0.3)
        .collect()
}

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.to_string()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(data_type::FLOAT),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|&d| Dimension {
                            dim_value: d,
                            dim_param: d.is_none().then(|| "batch".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

/// A 1×6×6 input, `nodes`, initializers; the output is `output`.
fn import(nodes: Vec<NodeProto>, initializer: Vec<TensorProto>) -> Result<Model, ModelError> {
    let model = ModelProto {
        ir_version: Some(8),
        producer_name: Some("test".to_string()),
        graph: Some(GraphProto {
            node: nodes,
            name: Some("g".to_string()),
            initializer,
            input: vec![value_info("x", &[None, Some(1), Some(6), Some(6)])],
            output: vec![value_info("output", &[])],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: Some(String::new()),
            version: Some(17),
        }],
    };
    load_onnx_bytes(
        &model.encode_to_vec(),
        &ImportOptions::for_path(std::path::Path::new("t.onnx")),
    )
}

fn conv(attribute: Vec<AttributeProto>) -> NodeProto {
    node("Conv", "/conv/Conv", &["x", "w"], "c", attribute)
}

fn tail(from: &str, features: i64) -> (Vec<NodeProto>, Vec<TensorProto>) {
    (
        vec![
            node("Flatten", "/Flatten", &[from], "f", vec![]),
            node("Gemm", "/fc/Gemm", &["f", "fc.weight"], "output", vec![]),
        ],
        // transB 0: [in, out].
        vec![floats(
            "fc.weight",
            &[features, 3],
            ramp(features as usize * 3, 0.05),
        )],
    )
}

fn conv_weight() -> TensorProto {
    floats("w", &[2, 1, 3, 3], ramp(18, 0.1))
}

#[test]
fn same_padding_of_an_odd_kernel_is_symmetric() {
    let (mut nodes, mut inits) = tail("c", 2 * 6 * 6);
    nodes.insert(0, conv(vec![attr_str("auto_pad", "SAME_UPPER")]));
    inits.push(conv_weight());
    let model = import(nodes, inits).expect("imports");
    let LayerOp::Conv2d(g) = model.layers[0].plan.op else {
        panic!("conv first")
    };
    assert_eq!(g.padding, 1);
    // Gemm without transB: the [in, out] matrix is stored transposed as [out, in].
    let fc = model
        .layers
        .last()
        .expect("layers")
        .params
        .as_ref()
        .expect("params");
    let w = ramp(72 * 3, 0.05);
    assert_eq!(
        fc.weight[1], w[3],
        "row 0 of [out, in] is column 0 of [in, out]"
    );
    assert_eq!(fc.weight[72], w[1]);
}

#[test]
fn same_lower_padding_that_splits_unevenly_is_refused_naming_the_node() {
    let (mut nodes, mut inits) = tail("c", 2 * 3 * 3);
    nodes.insert(
        0,
        conv(vec![
            attr_str("auto_pad", "SAME_LOWER"),
            attr_ints("strides", &[2, 2]),
        ]),
    );
    inits.push(conv_weight());
    let error = import(nodes, inits).expect_err("refused").to_string();
    assert!(
        error.contains("node /conv/Conv (Conv): auto_pad SAME_LOWER (pads [1, 1, 0, 0])"),
        "{error}"
    );
    assert!(error.contains("extra padding above and left"), "{error}");
}

#[test]
fn weights_may_come_from_constant_nodes() {
    let (mut nodes, inits) = tail("c", 2 * 4 * 4);
    nodes.insert(0, conv(vec![]));
    nodes.insert(
        0,
        NodeProto {
            attribute: vec![AttributeProto {
                name: Some("value".to_string()),
                t: Some(conv_weight()),
                ..Default::default()
            }],
            ..node("Constant", "/Constant", &[], "w", vec![])
        },
    );
    let model = import(nodes, inits).expect("imports");
    assert_eq!(
        model.layers[0].params.as_ref().expect("conv params").weight,
        ramp(18, 0.1)
    );
}

#[test]
fn dilation_groups_and_a_second_reader_are_refused_naming_the_node() {
    for (attribute, needle) in [
        (vec![attr_ints("dilations", &[2, 2])], "dilations [2, 2]"),
        (vec![attr_int("group", 2)], "group 2"),
    ] {
        let (mut nodes, mut inits) = tail("c", 2 * 4 * 4);
        nodes.insert(0, conv(attribute));
        inits.push(conv_weight());
        let error = import(nodes, inits).expect_err("refused").to_string();
        assert!(
            error.contains("node /conv/Conv (Conv)") && error.contains(needle),
            "{error}"
        );
    }
    // Two layers reading the conv's output: a branch.
    let (mut nodes, mut inits) = tail("c", 2 * 4 * 4);
    nodes.insert(0, conv(vec![]));
    nodes.insert(1, node("Relu", "/relu/Relu", &["c"], "r", vec![]));
    inits.push(conv_weight());
    let error = import(nodes, inits).expect_err("refused").to_string();
    assert!(
        error.contains("node /Flatten (Flatten): reads `c`"),
        "{error}"
    );
    assert!(error.contains("branches are not supported"), "{error}");
}

#[test]
fn a_softmax_before_the_end_and_an_unknown_op_are_refused() {
    let (mut nodes, mut inits) = tail("s", 2 * 4 * 4);
    nodes.insert(0, conv(vec![]));
    nodes.insert(1, node("Softmax", "/Softmax", &["c"], "s", vec![]));
    inits.push(conv_weight());
    let error = import(nodes, inits).expect_err("refused").to_string();
    assert!(
        error.contains("node /Flatten (Flatten): follows /Softmax (Softmax)"),
        "{error}"
    );

    let (mut nodes, mut inits) = tail("e", 2 * 4 * 4);
    nodes.insert(0, conv(vec![]));
    nodes.insert(1, node("Erf", "/Erf", &["c"], "e", vec![]));
    inits.push(conv_weight());
    let error = import(nodes, inits).expect_err("refused").to_string();
    assert!(
        error.contains("node /Erf (Erf): operator Erf is not supported"),
        "{error}"
    );
}

#[test]
fn a_nan_weight_is_refused_by_the_model_checks() {
    let (mut nodes, mut inits) = tail("c", 2 * 4 * 4);
    nodes.insert(0, conv(vec![]));
    let mut w = ramp(18, 0.1);
    w[5] = f32::NAN;
    inits.push(floats("w", &[2, 1, 3, 3], w));
    let error = import(nodes, inits).expect_err("refused");
    assert!(
        matches!(error, ModelError::NonFinite { index: 5, .. }),
        "{error}"
    );
}

#[test]
fn same_upper_padding_at_stride_2_pads_below_and_right() {
    let (mut nodes, mut inits) = tail("c", 2 * 3 * 3);
    nodes.insert(
        0,
        conv(vec![
            attr_str("auto_pad", "SAME_UPPER"),
            attr_ints("strides", &[2, 2]),
        ]),
    );
    inits.push(conv_weight());
    let model = import(nodes, inits).expect("imports");
    let LayerOp::Conv2d(g) = model.layers[0].plan.op else {
        panic!("conv first")
    };
    // ceil(6 / 2) = 3 outputs need 2·2 + 3 = 7 rows: one extra, below.
    assert_eq!((g.padding, g.padding_end), (0, 1));
}

#[test]
fn dropout_in_training_mode_and_layers_on_an_nhwc_tensor_are_refused() {
    let (mut nodes, mut inits) = tail("d", 2 * 4 * 4);
    nodes.insert(0, conv(vec![]));
    nodes.insert(
        1,
        node(
            "Dropout",
            "/drop/Dropout",
            &["c", "ratio", "training"],
            "d",
            vec![],
        ),
    );
    inits.push(conv_weight());
    inits.push(floats("ratio", &[], vec![0.3]));
    inits.push(TensorProto {
        data_type: Some(data_type::INT64),
        int64_data: vec![1],
        name: Some("training".to_string()),
        ..Default::default()
    });
    let error = import(nodes, inits).expect_err("refused").to_string();
    assert!(
        error.contains("node /drop/Dropout (Dropout): training_mode is true"),
        "{error}"
    );

    // A conv after the transpose to NHWC, before any flatten.
    let (mut nodes, mut inits) = tail("c2", 2 * 2 * 2);
    nodes.insert(0, conv(vec![]));
    nodes.insert(
        1,
        node(
            "Transpose",
            "/t/Transpose",
            &["c"],
            "t",
            vec![attr_ints("perm", &[0, 2, 3, 1])],
        ),
    );
    nodes.insert(2, node("Conv", "/conv2/Conv", &["t", "w2"], "c2", vec![]));
    inits.push(conv_weight());
    inits.push(floats("w2", &[2, 2, 3, 3], ramp(36, 0.1)));
    let error = import(nodes, inits).expect_err("refused").to_string();
    assert!(
        error.contains("node /conv2/Conv (Conv): runs on an N×H×W×C tensor"),
        "{error}"
    );
}

#[test]
fn layers_without_weights_are_named_after_their_exporters_module() {
    use super::ops::module_of_node;
    assert_eq!(module_of_node("/pool2/MaxPool").as_deref(), Some("pool2"));
    assert_eq!(
        module_of_node("/features/features.3/Relu").as_deref(),
        Some("features.3")
    );
    assert_eq!(
        module_of_node("sequential/max_pooling2d/MaxPool").as_deref(),
        Some("max_pooling2d")
    );
    assert_eq!(module_of_node("/Flatten"), None);
    assert_eq!(module_of_node("Relu_3"), None);
    assert_eq!(module_of_node("/a b/Relu"), None, "not a plain module path");
}
