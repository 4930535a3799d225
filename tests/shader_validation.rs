//! Every `.wgsl` under `shaders/` parses and validates with naga (no GPU needed), and every
//! uniform/table struct of the compute shaders has the size and field count of its Rust
//! twin in `cnnviz::gpu::params`, so a field added on one side only fails here.

use std::path::{Path, PathBuf};

use cnnviz::gpu::params;

fn shader_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "wgsl"))
        .collect();
    files.sort();
    files
}

fn parse_and_validate(path: &Path) -> Result<naga::Module, String> {
    let source = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let name = path.display().to_string();
    let module = naga::front::wgsl::parse_str(&source)
        .map_err(|e| e.emit_to_string_with_path(&source, &name))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(&source, &name))?;
    Ok(module)
}

#[test]
fn every_shader_parses_and_validates() {
    let files = shader_files();
    assert!(!files.is_empty(), "no .wgsl files found");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| parse_and_validate(path).err())
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `(size in bytes, member count)` of the struct `name` declared in `file`.
fn wgsl_struct(file: &str, name: &str) -> (u32, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("shaders")
        .join(file);
    let module = parse_and_validate(&path).unwrap_or_else(|e| panic!("{e}"));
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name)
            && let naga::TypeInner::Struct { members, span } = &ty.inner
        {
            // All fields are 4-byte scalars at consecutive offsets, like the Rust twins.
            for (i, member) in members.iter().enumerate() {
                assert_eq!(member.offset, 4 * i as u32, "{file}: {name} field {i}");
            }
            return (*span, members.len());
        }
    }
    panic!("{file} declares no struct {name}");
}

fn twin<T>(file: &str, name: &str) {
    let (span, members) = wgsl_struct(file, name);
    assert_eq!(span as usize, size_of::<T>(), "{file}: size of {name}");
    assert_eq!(members * 4, size_of::<T>(), "{file}: field count of {name}");
}

#[test]
fn rust_twins_match_the_wgsl_structs() {
    twin::<params::ConvParams>("conv2d.wgsl", "ConvParams");
    twin::<params::EltwiseParams>("relu.wgsl", "EltwiseParams");
    twin::<params::PoolParams>("maxpool2d.wgsl", "PoolParams");
    twin::<params::DenseParams>("dense.wgsl", "DenseParams");
    twin::<params::SoftmaxParams>("softmax.wgsl", "SoftmaxParams");
    twin::<params::CamParams>("grad_cam.wgsl", "CamParams");
    twin::<params::NormaliseParams>("normalise.wgsl", "NormaliseParams");
    twin::<params::RangeEntry>("value_range.wgsl", "RangeEntry");
}

#[test]
fn the_predicted_sentinel_matches_the_shader() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("shaders/softmax.wgsl");
    let source = std::fs::read_to_string(path).expect("softmax.wgsl is readable");
    assert_eq!(params::PREDICTED_SENTINEL, 0xffff_ffff);
    assert!(source.contains("const PREDICTED: u32 = 0xffffffffu;"));
}
