//! The constant plumbing exporters emit around a flatten (`Constant`, `Shape`, `Gather`,
//! `Unsqueeze`, `Concat`, `Cast`, `Identity`), evaluated while the graph is read, so the
//! `Reshape` at its end sees a plain list of dims.

use super::node;
use super::proto::{NodeProto, data_type};
use super::tensor::{self, Data, Value};
use crate::model::ModelError;

/// Ops whose outputs are computed here when all their inputs are constants.
pub const FOLDABLE: [&str; 7] = [
    "Constant",
    "Shape",
    "Gather",
    "Unsqueeze",
    "Concat",
    "Cast",
    "Identity",
];

/// Evaluates `node` on constant inputs (`Shape` also accepts an activation's dims, given
/// as an INT64 value by the caller). Returns the node's single output.
pub fn evaluate(node: &NodeProto, inputs: &[&Value]) -> Result<Value, ModelError> {
    let ints = |i: usize| -> Result<&[i64], ModelError> {
        inputs
            .get(i)
            .and_then(|v| v.as_ints())
            .ok_or_else(|| node::error(node, format!("input {i} must be an integer constant")))
    };
    match node::op(node) {
        "Constant" => constant(node),
        "Identity" => Ok(first(node, inputs)?.clone()),
        "Shape" => {
            let dims: Vec<i64> = first(node, inputs)?
                .dims
                .iter()
                .map(|&d| d as i64)
                .collect();
            let rank = dims.len() as i64;
            let clamp = |i: i64| (if i < 0 { i + rank } else { i }).clamp(0, rank) as usize;
            let start = clamp(node::int(node, "start").unwrap_or(0));
            let end = clamp(node::int(node, "end").unwrap_or(rank));
            let dims = dims.get(start..end.max(start)).unwrap_or(&[]).to_vec();
            Ok(Value::ints(vec![dims.len()], dims))
        }
        "Gather" => {
            let data = ints(0)?;
            let indices = inputs
                .get(1)
                .ok_or_else(|| node::error(node, "has no indices"))?;
            let axis = node::int(node, "axis").unwrap_or(0);
            if first(node, inputs)?.dims.len() != 1 || axis != 0 {
                return Err(node::error(
                    node,
                    "only gathering from a 1-D constant along axis 0 is supported",
                ));
            }
            let picked = ints(1)?
                .iter()
                .map(|&i| {
                    let at = if i < 0 { i + data.len() as i64 } else { i };
                    usize::try_from(at)
                        .ok()
                        .and_then(|at| data.get(at).copied())
                        .ok_or_else(|| node::error(node, format!("index {i} is out of range")))
                })
                .collect::<Result<Vec<i64>, _>>()?;
            Ok(Value::ints(indices.dims.clone(), picked))
        }
        "Unsqueeze" => {
            let value = first(node, inputs)?;
            // Opset 13 moved `axes` from an attribute to a second input.
            let axes = match node::ints(node, "axes") {
                Some(axes) => axes,
                None => ints(1)?.to_vec(),
            };
            let rank = (value.dims.len() + axes.len()) as i64;
            let mut axes: Vec<usize> = axes
                .iter()
                .map(|&a| if a < 0 { a + rank } else { a })
                .filter(|&a| (0..rank).contains(&a))
                .map(|a| a as usize)
                .collect();
            axes.sort_unstable();
            let mut dims = value.dims.clone();
            for a in axes {
                dims.insert(a.min(dims.len()), 1);
            }
            Ok(Value {
                dims,
                data: value.data.clone(),
            })
        }
        "Concat" => {
            let mut out = Vec::new();
            for (i, value) in inputs.iter().enumerate() {
                if value.dims.len() > 1 {
                    return Err(node::error(node, "only 1-D constants can be concatenated"));
                }
                out.extend_from_slice(ints(i)?);
            }
            Ok(Value::ints(vec![out.len()], out))
        }
        "Cast" => {
            let value = first(node, inputs)?;
            let to = node::int(node, "to").unwrap_or(0) as i32;
            let data = match (&value.data, to) {
                (Data::Floats(v), data_type::FLOAT) => Data::Floats(v.clone()),
                (Data::Ints(v), data_type::FLOAT) => {
                    Data::Floats(v.iter().map(|&i| i as f32).collect())
                }
                (Data::Ints(v), data_type::INT64 | data_type::INT32) => Data::Ints(v.clone()),
                _ => {
                    return Err(node::error(
                        node,
                        format!("casting a constant to ONNX data type {to} is not supported"),
                    ));
                }
            };
            Ok(Value {
                dims: value.dims.clone(),
                data,
            })
        }
        other => Err(node::error(
            node,
            format!("operator {other} on constants is not supported"),
        )),
    }
}

fn first<'a>(node: &NodeProto, inputs: &[&'a Value]) -> Result<&'a Value, ModelError> {
    inputs
        .first()
        .copied()
        .ok_or_else(|| node::error(node, "has no input"))
}

/// The value of a `Constant` node, from whichever of its attributes is set.
fn constant(node: &NodeProto) -> Result<Value, ModelError> {
    if let Some(t) = node::tensor(node, "value") {
        return tensor::decode(t, &format!("the value of node {}", node::label(node)));
    }
    if let Some(i) = node::int(node, "value_int") {
        return Ok(Value::ints(vec![], vec![i]));
    }
    if node::has(node, "value_ints") {
        let v = node::ints(node, "value_ints").unwrap_or_default();
        return Ok(Value::ints(vec![v.len()], v));
    }
    if let Some(f) = node::float(node, "value_float") {
        return Ok(Value {
            dims: vec![],
            data: Data::Floats(vec![f]),
        });
    }
    Err(node::error(
        node,
        "only tensor, int, ints and float constants are supported",
    ))
}
