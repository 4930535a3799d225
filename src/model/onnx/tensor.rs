//! Constant tensors of an ONNX graph (initializers, `Constant` nodes and the values folded
//! from them) decoded into plain vectors, with every size checked before anything is
//! allocated from it.

use super::proto::{DATA_LOCATION_EXTERNAL, TensorProto, data_type};
use crate::model::ModelError;
use crate::model::spec::limits as spec_limits;

/// The elements of a constant tensor.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// FLOAT, FLOAT16 (converted) and DOUBLE (narrowed) tensors.
    Floats(Vec<f32>),
    /// INT64 and INT32 tensors: shapes, indices and axes.
    Ints(Vec<i64>),
}

/// A constant tensor: its dims and its elements, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    pub dims: Vec<usize>,
    pub data: Data,
}

impl Value {
    pub fn ints(dims: Vec<usize>, values: Vec<i64>) -> Value {
        Value {
            dims,
            data: Data::Ints(values),
        }
    }

    pub fn as_ints(&self) -> Option<&[i64]> {
        match &self.data {
            Data::Ints(v) => Some(v),
            Data::Floats(_) => None,
        }
    }

    pub fn as_floats(&self) -> Option<&[f32]> {
        match &self.data {
            Data::Floats(v) => Some(v),
            Data::Ints(_) => None,
        }
    }
}

/// Number of elements `dims` claims, refused past the model's parameter cap: a file may
/// claim billions of elements in a few bytes, and nothing is allocated from the claim.
pub fn element_count(dims: &[i64], what: &str) -> Result<(usize, Vec<usize>), ModelError> {
    let mut count: usize = 1;
    let mut out = Vec::with_capacity(dims.len());
    for &d in dims {
        let d = usize::try_from(d).map_err(|_| {
            ModelError::Onnx(format!("{what} has a negative dimension in {dims:?}"))
        })?;
        count = count
            .checked_mul(d)
            .filter(|&c| c <= spec_limits::MAX_PARAMETERS)
            .ok_or_else(|| {
                ModelError::TooLarge(format!(
                    "{what} claims dims {dims:?}, more than {} elements",
                    spec_limits::MAX_PARAMETERS
                ))
            })?;
        out.push(d);
    }
    Ok((count, out))
}

/// Decodes one tensor. `what` names it in errors (e.g. "initializer `conv1.weight`").
pub fn decode(tensor: &TensorProto, what: &str) -> Result<Value, ModelError> {
    if tensor.data_location == Some(DATA_LOCATION_EXTERNAL) || !tensor.external_data.is_empty() {
        let location = tensor
            .external_data
            .iter()
            .find(|e| e.key.as_deref() == Some("location"))
            .and_then(|e| e.value.clone())
            .unwrap_or_default();
        return Err(ModelError::Onnx(format!(
            "{what} keeps its data in an external file (\"{location}\"); export with the weights inside the .onnx file (torch.onnx.export(..., external_data=False))"
        )));
    }
    let (count, dims) = element_count(&tensor.dims, what)?;
    let raw = tensor.raw_data.as_deref().filter(|r| !r.is_empty());
    let kind = tensor.data_type.unwrap_or(0);
    let data = match kind {
        data_type::FLOAT => Data::Floats(match raw {
            Some(raw) => from_raw(raw, count, 4, what, |b| {
                f32::from_le_bytes([b[0], b[1], b[2], b[3]])
            })?,
            None => exact(tensor.float_data.clone(), count, what)?,
        }),
        data_type::FLOAT16 => Data::Floats(match raw {
            Some(raw) => from_raw(raw, count, 2, what, |b| {
                half::f16::from_le_bytes([b[0], b[1]]).to_f32()
            })?,
            // int32_data holds each half's 16 bits.
            None => exact(tensor.int32_data.clone(), count, what)?
                .into_iter()
                .map(|bits| half::f16::from_bits(bits as u16).to_f32())
                .collect(),
        }),
        data_type::DOUBLE => Data::Floats(match raw {
            Some(raw) => from_raw(raw, count, 8, what, |b| {
                f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32
            })?,
            None => exact(tensor.double_data.clone(), count, what)?
                .into_iter()
                .map(|v| v as f32)
                .collect(),
        }),
        data_type::INT64 => Data::Ints(match raw {
            Some(raw) => from_raw(raw, count, 8, what, |b| {
                i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
            })?,
            None => exact(tensor.int64_data.clone(), count, what)?,
        }),
        data_type::INT32 => Data::Ints(match raw {
            Some(raw) => from_raw(raw, count, 4, what, |b| {
                i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })?,
            None => exact(tensor.int32_data.clone(), count, what)?
                .into_iter()
                .map(i64::from)
                .collect(),
        }),
        other => {
            return Err(ModelError::Onnx(format!(
                "{what} has ONNX data type {other}; only FLOAT, FLOAT16, DOUBLE, INT32 and INT64 constants are supported"
            )));
        }
    };
    Ok(Value { dims, data })
}

fn mismatch(what: &str, found: usize, count: usize) -> ModelError {
    ModelError::Onnx(format!(
        "{what} holds {found} elements but its dims claim {count}"
    ))
}

fn from_raw<T>(
    raw: &[u8],
    count: usize,
    width: usize,
    what: &str,
    read: impl Fn(&[u8]) -> T,
) -> Result<Vec<T>, ModelError> {
    if raw.len() != count * width {
        return Err(mismatch(what, raw.len() / width, count));
    }
    Ok(raw.chunks_exact(width).map(read).collect())
}

fn exact<T>(values: Vec<T>, count: usize, what: &str) -> Result<Vec<T>, ModelError> {
    if values.len() != count {
        return Err(mismatch(what, values.len(), count));
    }
    Ok(values)
}
