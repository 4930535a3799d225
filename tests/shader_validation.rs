//! Every compute shader of the network parses and validates with naga exactly as the
//! device compiles it (the shared prelude `shaders/params.wgsl` in front, see
//! `cnnviz::gpu::compute_shader_sources`), every other `.wgsl` under `shaders/` on its own
//! (no GPU needed), and every uniform/table struct has, field by field, the names and byte
//! offsets of its Rust twin in `cnnviz::gpu::params`, so a field added, renamed or moved
//! on one side only fails here.

use std::path::{Path, PathBuf};

use cnnviz::gpu::{SHADER_PRELUDE, compute_shader_sources, params};

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

fn parse_and_validate(name: &str, source: &str) -> Result<naga::Module, String> {
    let module = naga::front::wgsl::parse_str(source)
        .map_err(|e| e.emit_to_string_with_path(source, name))?;
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::default(),
    )
    .validate(&module)
    .map_err(|e| e.emit_to_string_with_path(source, name))?;
    Ok(module)
}

/// What the device compiles for `file`: the concatenated source for a compute shader of
/// the network, else the file itself.
fn compiled_source(file: &str) -> String {
    match compute_shader_sources()
        .into_iter()
        .find(|(f, _)| *f == file)
    {
        Some((_, source)) => source,
        None => {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("shaders")
                .join(file);
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        }
    }
}

#[test]
fn every_shader_parses_and_validates_as_compiled() {
    let files = shader_files();
    assert!(!files.is_empty(), "no .wgsl files found");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|path| {
            let file = path.file_name()?.to_str()?;
            parse_and_validate(file, &compiled_source(file)).err()
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every compute family is on disk and starts with the prelude.
    for (file, source) in compute_shader_sources() {
        assert!(
            files.iter().any(|f| f.ends_with(file)),
            "{file} is not in shaders/"
        );
        assert!(source.starts_with(SHADER_PRELUDE), "{file}");
    }
}

#[test]
fn no_shader_redeclares_a_prelude_struct() {
    let prelude =
        parse_and_validate("params.wgsl", SHADER_PRELUDE).unwrap_or_else(|e| panic!("{e}"));
    let shared: Vec<String> = prelude
        .types
        .iter()
        .filter_map(|(_, ty)| ty.name.clone())
        .collect();
    assert!(shared.contains(&"ConvParams".to_string()), "{shared:?}");
    for (file, source) in compute_shader_sources() {
        let own = &source[SHADER_PRELUDE.len()..];
        for name in &shared {
            assert!(
                !own.contains(&format!("struct {name} {{")),
                "{file} declares {name} again"
            );
        }
    }
}

/// `(size, [(field name, offset)])` of the struct `name` as naga lays it out in `file`.
fn wgsl_struct(file: &str, name: &str) -> (usize, Vec<(String, usize)>) {
    let module = parse_and_validate(file, &compiled_source(file)).unwrap_or_else(|e| panic!("{e}"));
    for (_, ty) in module.types.iter() {
        if ty.name.as_deref() == Some(name)
            && let naga::TypeInner::Struct { members, span } = &ty.inner
        {
            let fields = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .collect();
            return (*span as usize, fields);
        }
    }
    panic!("{file} declares no struct {name}");
}

#[test]
fn rust_twins_match_the_wgsl_structs_field_by_field() {
    let twins = params::twins();
    assert!(twins.len() >= 10, "{} twins", twins.len());
    for name in ["ExplainParams", "FeatureVisParams"] {
        assert!(twins.iter().any(|t| t.name == name), "no twin of {name}");
    }
    for twin in twins {
        let (size, fields) = wgsl_struct(twin.file, twin.name);
        assert_eq!(size, twin.size, "{}: size of {}", twin.file, twin.name);
        let rust: Vec<(String, usize)> = twin
            .fields
            .iter()
            .map(|&(name, offset)| (name.to_string(), offset))
            .collect();
        assert_eq!(fields, rust, "{}: fields of {}", twin.file, twin.name);
    }
}

#[test]
fn shader_constants_match_their_rust_twins() {
    let fused = compiled_source("fused.wgsl");
    assert_eq!(params::PREDICTED_SENTINEL, 0xffff_ffff);
    for file in ["softmax.wgsl", "fused.wgsl"] {
        assert!(
            compiled_source(file).contains("const PREDICTED: u32 = 0xffffffffu;"),
            "{file}"
        );
    }
    let lines = [
        format!("const MAX_OPS: u32 = {}u;", params::FUSED_MAX_OPS),
        format!("const NO_RANGE: u32 = {:#x}u;", params::NO_RANGE),
        format!("const WG: u32 = {}u;", params::FUSED_WORKGROUP),
    ];
    for line in lines {
        assert!(fused.contains(&line), "fused.wgsl lacks `{line}`");
    }
    let feature_vis = compiled_source("feature_vis.wgsl");
    let line = format!(
        "const MAX_INPUT: u32 = {}u;",
        cnnviz::gpu::feature_vis::MAX_INPUT_FLOATS
    );
    assert!(
        feature_vis.contains(&line),
        "feature_vis.wgsl lacks `{line}`"
    );
    for kind in params::FusedOpKind::ALL {
        let line = format!("const {}: u32 = {}u;", kind.wgsl_name(), kind as u32);
        assert!(fused.contains(&line), "fused.wgsl lacks `{line}`");
    }
}
