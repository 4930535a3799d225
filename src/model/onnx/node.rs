//! Reading a node's name, attributes and inputs, and the one-line errors that name it.

use super::proto::{AttributeProto, NodeProto};
use crate::model::ModelError;

/// How errors name a node: its name, else the value it produces.
pub fn label(node: &NodeProto) -> String {
    match node.name.as_deref() {
        Some(name) if !name.is_empty() => name.to_string(),
        _ => format!(
            "producing `{}`",
            node.output.first().map(String::as_str).unwrap_or("nothing")
        ),
    }
}

pub fn op(node: &NodeProto) -> &str {
    node.op_type.as_deref().unwrap_or("")
}

/// `node NAME (OP): why`, as a [`ModelError::Onnx`].
pub fn error(node: &NodeProto, why: impl std::fmt::Display) -> ModelError {
    ModelError::Onnx(format!("node {} ({}): {why}", label(node), op(node)))
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute
        .iter()
        .find(|a| a.name.as_deref() == Some(name))
}

pub fn int(node: &NodeProto, name: &str) -> Option<i64> {
    attribute(node, name).and_then(|a| a.i)
}

pub fn float(node: &NodeProto, name: &str) -> Option<f32> {
    attribute(node, name).and_then(|a| a.f)
}

pub fn ints(node: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attribute(node, name).map(|a| a.ints.clone())
}

pub fn string(node: &NodeProto, name: &str) -> Option<String> {
    attribute(node, name).and_then(|a| {
        a.s.as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    })
}

pub fn has(node: &NodeProto, name: &str) -> bool {
    attribute(node, name).is_some()
}

pub fn tensor<'a>(node: &'a NodeProto, name: &str) -> Option<&'a super::proto::TensorProto> {
    attribute(node, name).and_then(|a| a.t.as_ref())
}

/// Attributes that refer to a function's attributes only occur inside ONNX functions,
/// which cnnviz does not expand.
pub fn refuse_attribute_references(node: &NodeProto) -> Result<(), ModelError> {
    match node.attribute.iter().find(|a| a.ref_attr_name.is_some()) {
        Some(a) => Err(error(
            node,
            format!(
                "attribute `{}` refers to a function attribute; ONNX functions are not supported",
                a.name.as_deref().unwrap_or("")
            ),
        )),
        None => Ok(()),
    }
}

/// The node's inputs, with the empty names ONNX uses for omitted optional inputs removed
/// only at the end (an omitted input in the middle keeps its place).
pub fn inputs(node: &NodeProto) -> Vec<&str> {
    let mut inputs: Vec<&str> = node.input.iter().map(String::as_str).collect();
    while inputs.last() == Some(&"") {
        inputs.pop();
    }
    inputs
}
