//! The short architecture text of `--arch`, for a safetensors file that holds only a
//! PyTorch `state_dict` (no cnnviz metadata):
//!
//! ```text
//! input(1,28,28) conv(1,16,3,p1) bn relu maxpool(2) conv(16,32,3,p1) relu avgpool(2) flatten dense(1568,10)
//! ```
//!
//! Items, separated by spaces (arguments by commas, spaces inside parentheses allowed):
//!
//! | item | meaning |
//! |---|---|
//! | `input(C,H,W)` | first, required: 1 or 3 channels, H×W |
//! | `conv(in,out,k[,sN][,pN or pN/M])` | `Conv2d(in, out, k, stride=N, padding=N)`; `pN/M`: N above/left, M below/right |
//! | `bn` or `bn(eps)` | `BatchNorm2d`/`BatchNorm1d` of the current channels (eps 1e-5) |
//! | `relu`, `sigmoid`, `tanh` | activations |
//! | `leaky_relu` or `leaky_relu(slope)` | `LeakyReLU` (slope 0.01) |
//! | `dropout` or `dropout(p)` | drawn, the identity at inference |
//! | `maxpool(k[,sN])` | `MaxPool2d(k, stride=N)` (stride k) |
//! | `avgpool(k[,sN][,pN][,exclude_pad])` | `AvgPool2d` (stride k, `count_include_pad=False` with `exclude_pad`) |
//! | `gap` | `AdaptiveAvgPool2d(1)`: C×1×1 |
//! | `flatten` | C·H·W → vector |
//! | `dense(in,out)` (or `linear`) | `Linear(in, out)` |
//! | `norm(mean,std)` | input normalisation, one value or `[a,b,c]` per channel (MNIST's 0.1307, 0.3081) |
//! | `classes(n)` or `classes(a,b,…)` | class labels (0…n-1 from the last dense layer) |
//! | `preprocess(mnist or resize)` | how pictures are prepared (by shape) |
//!
//! Biases are taken when the file has them. The file's tensors are grouped by module
//! (`features.0.weight` → `features.0`), the modules put in natural order (`features.2`
//! before `features.10`), and each conv, batch-norm and dense layer of the text takes the
//! next module of its kind, whose shapes must match. `num_batches_tracked` is ignored.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::spec::{
    ARCHITECTURE_FORMAT, ARCHITECTURE_VERSION, ChannelValues, Preprocessing,
    padded_window_output_side,
};
use super::{Architecture, InputSpec, LayerSpec, ModelError, Normalization};

/// Normalisation when the text has no `norm(…)`: MNIST's, as for imported ONNX files.
pub const DEFAULT_NORMALIZATION: Normalization = super::onnx::DEFAULT_NORMALIZATION;

/// Tensors that PyTorch's `state_dict` holds but no layer reads.
const IGNORED_SUFFIX: &str = "num_batches_tracked";

/// The parsed text: the architecture with placeholder tensor names, bound to a file's
/// tensors by [`ArchText::bind`].
#[derive(Clone, Debug, PartialEq)]
pub struct ArchText {
    architecture: Architecture,
}

fn error(why: impl std::fmt::Display) -> ModelError {
    ModelError::ArchText(why.to_string())
}

/// Splits at `separator` outside parentheses and brackets; `None` when they do not close.
fn split_top(text: &str, separator: impl Fn(char) -> bool) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
            }
            c if depth == 0 && separator(c) => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    (depth == 0).then(|| {
        parts.push(&text[start..]);
        parts
            .into_iter()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect()
    })
}

/// One item: `word` or `word(arg, …)`.
struct Item<'a> {
    text: &'a str,
    word: String,
    args: Vec<&'a str>,
}

impl<'a> Item<'a> {
    fn parse(text: &'a str) -> Result<Item<'a>, ModelError> {
        let (word, args) = match text.find('(') {
            Some(open) if text.ends_with(')') => {
                let inner = &text[open + 1..text.len() - 1];
                let args = split_top(inner, |c| c == ',')
                    .ok_or_else(|| error(format!("`{text}`: unbalanced brackets")))?;
                (&text[..open], args)
            }
            Some(_) => return Err(error(format!("`{text}`: missing `)` at the end"))),
            None => (text, Vec::new()),
        };
        Ok(Item {
            text,
            word: word.trim().to_ascii_lowercase(),
            args,
        })
    }

    fn fail(&self, why: impl std::fmt::Display) -> ModelError {
        error(format!("`{}`: {why}", self.text))
    }

    fn count(&self, range: std::ops::RangeInclusive<usize>, usage: &str) -> Result<(), ModelError> {
        if range.contains(&self.args.len()) {
            Ok(())
        } else {
            Err(self.fail(format!("takes {usage}, got {} value(s)", self.args.len())))
        }
    }

    fn number<T: std::str::FromStr>(&self, text: &str, what: &str) -> Result<T, ModelError> {
        text.trim()
            .parse()
            .map_err(|_| self.fail(format!("{what} `{text}` is not a number")))
    }

    /// Options after the positional arguments: `s2`, `p1`, `p0/1`, or a flag word.
    fn options(&self, from: usize, allowed: &[&str]) -> Result<Options, ModelError> {
        let mut options = Options::default();
        for &arg in self.args.iter().skip(from) {
            let arg = arg.trim();
            if allowed.contains(&arg) {
                options.flags.push(arg.to_string());
            } else if let Some(v) = arg.strip_prefix('s').filter(|_| allowed.contains(&"s")) {
                options.stride = Some(self.number(v, "stride")?);
            } else if let Some(v) = arg.strip_prefix('p').filter(|_| allowed.contains(&"p")) {
                match v.split_once('/') {
                    Some((a, b)) if allowed.contains(&"p/") => {
                        options.padding = Some(self.number(a, "padding")?);
                        options.padding_end = Some(self.number(b, "padding")?);
                    }
                    _ => options.padding = Some(self.number(v, "padding")?),
                }
            } else {
                let known: Vec<String> = allowed
                    .iter()
                    .map(|a| match *a {
                        "s" => "sN (stride)".to_string(),
                        "p" => "pN (padding)".to_string(),
                        "p/" => "pN/M (padding above-left/below-right)".to_string(),
                        flag => flag.to_string(),
                    })
                    .collect();
                return Err(self.fail(format!(
                    "unknown option `{arg}` (options: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(options)
    }
}

#[derive(Default)]
struct Options {
    stride: Option<usize>,
    padding: Option<usize>,
    padding_end: Option<usize>,
    flags: Vec<String>,
}

/// A channel value: `0.5` or `[0.485, 0.456, 0.406]`.
fn channel_values(item: &Item, text: &str) -> Result<ChannelValues, ModelError> {
    let text = text.trim();
    match text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) {
        Some(list) => Ok(ChannelValues::Each(
            list.split(',')
                .map(|v| item.number(v, "normalisation value"))
                .collect::<Result<_, _>>()?,
        )),
        None => Ok(ChannelValues::One(
            item.number(text, "normalisation value")?,
        )),
    }
}

/// The running shape while parsing, to give `bn` its channel count.
#[derive(Clone, Copy)]
enum Running {
    Map(usize, usize, usize),
    Vector(usize),
}

impl Running {
    fn channels(self) -> usize {
        match self {
            Running::Map(c, _, _) => c,
            Running::Vector(n) => n,
        }
    }
}

impl ArchText {
    /// Parses the text; every mistake is one line naming the item.
    pub fn parse(text: &str, name: &str) -> Result<ArchText, ModelError> {
        let items = split_top(text, char::is_whitespace)
            .ok_or_else(|| error("unbalanced parentheses or brackets"))?;
        let Some((first, rest)) = items.split_first() else {
            return Err(error("the architecture text is empty"));
        };
        let first = Item::parse(first)?;
        if first.word != "input" {
            return Err(error(format!(
                "`{}`: the text starts with input(C,H,W), e.g. input(1,28,28)",
                first.text
            )));
        }
        first.count(3..=3, "(channels, height, width)")?;
        let input = InputSpec {
            channels: first.number(first.args[0], "channels")?,
            height: first.number(first.args[1], "height")?,
            width: first.number(first.args[2], "width")?,
        };
        let mut shape = Running::Map(input.channels, input.height, input.width);
        let mut normalization = DEFAULT_NORMALIZATION;
        let mut classes = None;
        let mut preprocessing = None;
        let mut layers = Vec::new();
        let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
        let mut next_name = |kind: &'static str| {
            let n = counts.entry(kind).or_default();
            *n += 1;
            format!("{kind}{n}")
        };
        for text in rest {
            let item = Item::parse(text)?;
            let window = |kernel: usize,
                          stride: usize,
                          p: usize,
                          pe: usize|
             -> Result<Running, ModelError> {
                let Running::Map(c, h, w) = shape else {
                    return Err(item.fail("needs a C×H×W input, but comes after a flatten"));
                };
                match (
                    padded_window_output_side(h, kernel, stride, p, pe),
                    padded_window_output_side(w, kernel, stride, p, pe),
                ) {
                    (Some(oh), Some(ow)) => Ok(Running::Map(c, oh, ow)),
                    _ => Err(item.fail(format!(
                        "the {kernel}×{kernel} window does not fit the {h}×{w} input"
                    ))),
                }
            };
            let spec = match item.word.as_str() {
                "conv" | "conv2d" => {
                    item.count(3..=5, "(in, out, kernel[, sN][, pN or pN/M])")?;
                    let in_channels = item.number(item.args[0], "in channels")?;
                    let out_channels = item.number(item.args[1], "out channels")?;
                    let kernel_size: usize = item.number(item.args[2], "kernel")?;
                    let o = item.options(3, &["s", "p", "p/"])?;
                    let stride = o.stride.unwrap_or(1);
                    let padding = o.padding.unwrap_or(0);
                    if kernel_size == 0 || stride == 0 {
                        return Err(item.fail("kernel and stride must be positive"));
                    }
                    let end = o.padding_end.unwrap_or(padding);
                    let next = window(kernel_size, stride, padding, end)?;
                    let Running::Map(_, h, w) = next else {
                        unreachable!("a window makes a map")
                    };
                    shape = Running::Map(out_channels, h, w);
                    LayerSpec::Conv2d {
                        name: next_name("conv"),
                        in_channels,
                        out_channels,
                        kernel_size,
                        stride,
                        padding,
                        padding_end: o.padding_end.filter(|&e| e != padding),
                        weight: String::new(),
                        bias: None,
                    }
                }
                "bn" | "batchnorm" | "batch_norm" => {
                    item.count(0..=1, "nothing or (eps)")?;
                    let eps = match item.args.first() {
                        Some(e) => item.number(e, "eps")?,
                        None => 1e-5,
                    };
                    LayerSpec::BatchNorm {
                        name: next_name("bn"),
                        num_features: shape.channels(),
                        eps,
                        weight: String::new(),
                        bias: String::new(),
                        running_mean: String::new(),
                        running_var: String::new(),
                    }
                }
                "relu" | "sigmoid" | "tanh" | "flatten" | "gap" => {
                    item.count(0..=0, "no values")?;
                    match item.word.as_str() {
                        "relu" => LayerSpec::Relu {
                            name: next_name("relu"),
                        },
                        "sigmoid" => LayerSpec::Sigmoid {
                            name: next_name("sigmoid"),
                        },
                        "tanh" => LayerSpec::Tanh {
                            name: next_name("tanh"),
                        },
                        "flatten" => {
                            shape = Running::Vector(match shape {
                                Running::Map(c, h, w) => c * h * w,
                                Running::Vector(n) => n,
                            });
                            LayerSpec::Flatten {
                                name: next_name("flatten"),
                            }
                        }
                        _ => {
                            let Running::Map(c, _, _) = shape else {
                                return Err(
                                    item.fail("needs a C×H×W input, but comes after a flatten")
                                );
                            };
                            shape = Running::Map(c, 1, 1);
                            LayerSpec::GlobalAvgPool {
                                name: next_name("gap"),
                            }
                        }
                    }
                }
                "leaky_relu" | "leakyrelu" => {
                    item.count(0..=1, "nothing or (negative slope)")?;
                    let negative_slope = match item.args.first() {
                        Some(s) => item.number(s, "negative slope")?,
                        None => 0.01,
                    };
                    LayerSpec::LeakyRelu {
                        name: next_name("leaky_relu"),
                        negative_slope,
                    }
                }
                "dropout" => {
                    item.count(0..=1, "nothing or (p)")?;
                    let p = match item.args.first() {
                        Some(p) => item.number(p, "p")?,
                        None => 0.5,
                    };
                    LayerSpec::Dropout {
                        name: next_name("dropout"),
                        p,
                    }
                }
                "maxpool" | "maxpool2d" => {
                    item.count(1..=2, "(kernel[, sN])")?;
                    let kernel_size: usize = item.number(item.args[0], "kernel")?;
                    let stride = item.options(1, &["s"])?.stride.unwrap_or(kernel_size);
                    if kernel_size == 0 || stride == 0 {
                        return Err(item.fail("kernel and stride must be positive"));
                    }
                    shape = window(kernel_size, stride, 0, 0)?;
                    LayerSpec::MaxPool2d {
                        name: next_name("maxpool"),
                        kernel_size,
                        stride,
                    }
                }
                "avgpool" | "avgpool2d" => {
                    item.count(1..=4, "(kernel[, sN][, pN][, exclude_pad])")?;
                    let kernel_size: usize = item.number(item.args[0], "kernel")?;
                    let o = item.options(1, &["s", "p", "exclude_pad"])?;
                    let stride = o.stride.unwrap_or(kernel_size);
                    let padding = o.padding.unwrap_or(0);
                    if kernel_size == 0 || stride == 0 {
                        return Err(item.fail("kernel and stride must be positive"));
                    }
                    shape = window(kernel_size, stride, padding, padding)?;
                    LayerSpec::AvgPool2d {
                        name: next_name("avgpool"),
                        kernel_size,
                        stride,
                        padding,
                        count_include_pad: o.flags.is_empty(),
                    }
                }
                "dense" | "linear" | "fc" => {
                    item.count(2..=2, "(in, out)")?;
                    let in_features = item.number(item.args[0], "in features")?;
                    let out_features = item.number(item.args[1], "out features")?;
                    shape = Running::Vector(out_features);
                    LayerSpec::Dense {
                        name: next_name("fc"),
                        in_features,
                        out_features,
                        weight: String::new(),
                        bias: None,
                    }
                }
                "norm" | "normalize" => {
                    item.count(2..=2, "(mean, std), each one value or [a,b,c]")?;
                    normalization = Normalization {
                        mean: channel_values(&item, item.args[0])?,
                        std: channel_values(&item, item.args[1])?,
                    };
                    continue;
                }
                "classes" => {
                    item.count(
                        1..=super::spec::limits::MAX_CLASSES,
                        "(n) or (label, label, …)",
                    )?;
                    classes = Some(match item.args[..] {
                        [n] if n.trim().parse::<usize>().is_ok() => {
                            let n: usize = item.number(n, "class count")?;
                            if n > super::spec::limits::MAX_CLASSES {
                                return Err(item.fail(format!(
                                    "at most {} classes",
                                    super::spec::limits::MAX_CLASSES
                                )));
                            }
                            (0..n).map(|c| c.to_string()).collect()
                        }
                        ref labels => labels.iter().map(|l| l.to_string()).collect(),
                    });
                    continue;
                }
                "preprocess" => {
                    item.count(1..=1, "(mnist) or (resize)")?;
                    preprocessing = Some(match item.args[0] {
                        "mnist" => Preprocessing::MnistCentre,
                        "resize" => Preprocessing::Resize,
                        other => {
                            return Err(item.fail(format!(
                                "unknown preprocessing `{other}` (mnist or resize)"
                            )));
                        }
                    });
                    continue;
                }
                "input" => return Err(item.fail("input(…) may only come first")),
                other => {
                    return Err(item.fail(format!(
                        "unknown item `{other}` (items: input, conv, bn, relu, leaky_relu, sigmoid, tanh, dropout, maxpool, avgpool, gap, flatten, dense, norm, classes, preprocess)"
                    )));
                }
            };
            layers.push(spec);
        }
        let last_dense = layers.iter().rev().find_map(|l| match l {
            LayerSpec::Dense { out_features, .. } => Some(*out_features),
            _ => None,
        });
        let classes = classes
            .or_else(|| last_dense.map(|n| (0..n).map(|c| c.to_string()).collect()))
            .ok_or_else(|| error("the text has no dense layer to produce class scores"))?;
        Ok(ArchText {
            architecture: Architecture {
                format: ARCHITECTURE_FORMAT.to_string(),
                version: ARCHITECTURE_VERSION,
                name: name.to_string(),
                input,
                classes,
                normalization,
                preprocessing,
                layers,
            },
        })
    }

    /// Gives every conv, batch-norm and dense layer the names of the file's tensors (see
    /// the module documentation), checking their shapes; `tensors` are the file's names
    /// and shapes. The result still goes through the loader's own checks.
    pub fn bind(&self, tensors: &[(String, Vec<usize>)]) -> Result<Architecture, ModelError> {
        let modules = modules(tensors);
        let mut used = vec![false; modules.len()];
        let mut architecture = self.architecture.clone();
        // Module paths name their layers unless one is taken (`relu1`, or used twice).
        let mut names: std::collections::HashSet<String> = architecture
            .layers
            .iter()
            .map(|l| l.name().to_string())
            .collect();
        for (index, spec) in architecture.layers.iter_mut().enumerate() {
            let Some(kind) = ModuleKind::of_spec(spec) else {
                continue;
            };
            let at = format!("layer {index} ({})", spec.kind_name());
            let Some(m) = (0..modules.len()).find(|&m| !used[m] && modules[m].kind == Some(kind))
            else {
                return Err(error(format!(
                    "{at}: the file has no more {} tensors ({}); found: {}",
                    kind.describe(),
                    kind.needs(),
                    describe_tensors(tensors)
                )));
            };
            used[m] = true;
            let module = &modules[m];
            let expected = expected_shapes(spec);
            for (suffix, shape) in &expected {
                let found = module.tensors.get(*suffix);
                if found.is_some_and(|f| f != shape) || (found.is_none() && *suffix != "bias") {
                    let name = module.name(suffix);
                    return Err(error(format!(
                        "{at}: tensor `{name}` has shape {:?}, the text says {shape:?}",
                        found.cloned().unwrap_or_default()
                    )));
                }
            }
            let prefix = module.prefix.clone();
            let layer_name = if !prefix.is_empty() && names.insert(prefix.clone()) {
                Some(prefix)
            } else {
                None
            };
            match spec {
                LayerSpec::Conv2d {
                    name, weight, bias, ..
                }
                | LayerSpec::Dense {
                    name, weight, bias, ..
                } => {
                    *weight = module.name("weight");
                    *bias = module
                        .tensors
                        .contains_key("bias")
                        .then(|| module.name("bias"));
                    if let Some(n) = layer_name {
                        *name = n;
                    }
                }
                LayerSpec::BatchNorm {
                    name,
                    weight,
                    bias,
                    running_mean,
                    running_var,
                    ..
                } => {
                    *weight = module.name("weight");
                    *bias = module.name("bias");
                    *running_mean = module.name("running_mean");
                    *running_var = module.name("running_var");
                    if let Some(n) = layer_name {
                        *name = n;
                    }
                }
                _ => {}
            }
        }
        let unused: Vec<String> = modules
            .iter()
            .zip(&used)
            .filter(|(_, used)| !**used)
            .flat_map(|(m, _)| {
                m.tensors
                    .iter()
                    .filter(|(suffix, _)| suffix.as_str() != IGNORED_SUFFIX)
                    .map(|(suffix, shape)| format!("`{}` {shape:?}", m.name(suffix)))
            })
            .collect();
        if !unused.is_empty() {
            return Err(error(format!(
                "no layer of the text reads {} (is a conv, bn or dense layer missing?)",
                unused.join(", ")
            )));
        }
        Ok(architecture)
    }
}

/// `(suffix, shape)` of the tensors a layer needs (the bias is optional).
fn expected_shapes(spec: &LayerSpec) -> Vec<(&'static str, Vec<usize>)> {
    match *spec {
        LayerSpec::Conv2d {
            in_channels,
            out_channels,
            kernel_size,
            ..
        } => vec![
            (
                "weight",
                vec![out_channels, in_channels, kernel_size, kernel_size],
            ),
            ("bias", vec![out_channels]),
        ],
        LayerSpec::Dense {
            in_features,
            out_features,
            ..
        } => vec![
            ("weight", vec![out_features, in_features]),
            ("bias", vec![out_features]),
        ],
        LayerSpec::BatchNorm { num_features, .. } => {
            ["weight", "bias", "running_mean", "running_var"]
                .into_iter()
                .map(|s| (s, vec![num_features]))
                .collect()
        }
        _ => Vec::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ModuleKind {
    Conv,
    BatchNorm,
    Dense,
}

impl ModuleKind {
    fn of_spec(spec: &LayerSpec) -> Option<ModuleKind> {
        match spec {
            LayerSpec::Conv2d { .. } => Some(ModuleKind::Conv),
            LayerSpec::BatchNorm { .. } => Some(ModuleKind::BatchNorm),
            LayerSpec::Dense { .. } => Some(ModuleKind::Dense),
            _ => None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            ModuleKind::Conv => "conv",
            ModuleKind::BatchNorm => "batch-norm",
            ModuleKind::Dense => "dense",
        }
    }

    fn needs(self) -> &'static str {
        match self {
            ModuleKind::Conv => "`*.weight` of 4 dims",
            ModuleKind::BatchNorm => "`*.weight`, `*.bias`, `*.running_mean`, `*.running_var`",
            ModuleKind::Dense => "`*.weight` of 2 dims",
        }
    }
}

/// One PyTorch module's tensors: `features.0` → {`weight`: [16, 1, 3, 3], `bias`: [16]}.
#[derive(Clone, Debug)]
pub struct Module {
    pub prefix: String,
    pub tensors: BTreeMap<String, Vec<usize>>,
    kind: Option<ModuleKind>,
}

impl Module {
    fn name(&self, suffix: &str) -> String {
        if self.prefix.is_empty() {
            suffix.to_string()
        } else {
            format!("{}.{suffix}", self.prefix)
        }
    }
}

/// The file's tensors grouped by module, in natural order of the module paths.
fn modules(tensors: &[(String, Vec<usize>)]) -> Vec<Module> {
    let mut by_prefix: BTreeMap<String, BTreeMap<String, Vec<usize>>> = BTreeMap::new();
    for (name, shape) in tensors {
        let (prefix, suffix) = name.rsplit_once('.').unwrap_or(("", name));
        by_prefix
            .entry(prefix.to_string())
            .or_default()
            .insert(suffix.to_string(), shape.clone());
    }
    let mut modules: Vec<Module> = by_prefix
        .into_iter()
        .map(|(prefix, tensors)| {
            let rank = tensors.get("weight").map(Vec::len);
            let kind =
                if tensors.contains_key("running_mean") && tensors.contains_key("running_var") {
                    Some(ModuleKind::BatchNorm)
                } else {
                    match rank {
                        Some(4) => Some(ModuleKind::Conv),
                        Some(2) => Some(ModuleKind::Dense),
                        _ => None,
                    }
                };
            Module {
                prefix,
                tensors,
                kind,
            }
        })
        .collect();
    modules.sort_by(|a, b| natural_cmp(&a.prefix, &b.prefix));
    modules
}

/// `features.2` before `features.10`: numbers compare as numbers.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let mut a_parts = a.split('.');
    let mut b_parts = b.split('.');
    loop {
        match (a_parts.next(), b_parts.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (x.parse::<u64>(), y.parse::<u64>()) {
                    (Ok(x), Ok(y)) => x.cmp(&y),
                    _ => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// `name [dims]` of every tensor, in module order, for messages.
pub fn describe_tensors(tensors: &[(String, Vec<usize>)]) -> String {
    let mut listed: Vec<String> = Vec::new();
    for m in modules(tensors) {
        for (suffix, shape) in &m.tensors {
            listed.push(format!("{} {shape:?}", m.name(suffix)));
        }
    }
    listed.join(", ")
}

/// An `--arch` line guessed from a state_dict's shapes: its convs (with ReLU and `same`
/// padding) and batch norms in module order, then its dense layers; a 2×2 max pool after
/// each of the first conv blocks, as many as bring a 28×28 (grey) or 32×32 (colour) input
/// to the size the first dense layer reads (a global average pool when it reads one value
/// per channel). A guess: a state_dict records no input size, padding, pooling or
/// activations. `None` when the tensors are not convs, batch norms and dense layers.
pub fn guess_arch_line(tensors: &[(String, Vec<usize>)]) -> Option<String> {
    let mut modules = modules(tensors);
    // Convolutions come before the classifier (`classifier` sorts before `features`).
    modules.sort_by_key(|m| m.kind == Some(ModuleKind::Dense));
    let mut blocks: Vec<Vec<String>> = Vec::new();
    let mut dense = Vec::new();
    let (mut channels, mut last_conv_out) = (None, None);
    for m in &modules {
        match (m.kind?, m.tensors.get("weight").map(Vec::as_slice)) {
            (ModuleKind::Conv, Some(&[out, inp, k, _])) => {
                channels.get_or_insert(inp);
                last_conv_out = Some(out);
                blocks.push(vec![format!("conv({inp},{out},{k},p{})", k / 2)]);
            }
            (ModuleKind::BatchNorm, _) if dense.is_empty() && !blocks.is_empty() => {
                blocks.last_mut()?.push("bn".to_string());
            }
            (ModuleKind::BatchNorm, _) => dense.push("bn".to_string()),
            (ModuleKind::Dense, Some(&[out, inp])) => {
                dense.push(format!("dense({inp},{out})"));
                dense.push("relu".to_string());
            }
            _ => return None,
        }
    }
    dense.pop_if(|d| d == "relu");
    let channels = channels.unwrap_or(1);
    let side: usize = if channels == 3 { 32 } else { 28 };
    // How far the maps shrink before the first dense layer.
    let first_in = dense.iter().find_map(|d| {
        d.strip_prefix("dense(")?
            .split(',')
            .next()?
            .parse::<usize>()
            .ok()
    });
    let (mut pools, mut global) = (0, false);
    if let (Some(c), Some(n)) = (last_conv_out, first_in) {
        if n == c {
            global = true;
        } else if n % c == 0 {
            let plane = n / c;
            let s = (plane as f64).sqrt().round() as usize;
            let mut size = side;
            while s * s == plane && size > s && size.is_multiple_of(2) {
                size /= 2;
                pools += 1;
            }
        }
    }
    let mut items = vec![format!("input({channels},{side},{side})")];
    let block_count = blocks.len();
    for (i, block) in blocks.into_iter().enumerate() {
        items.extend(block);
        items.push("relu".to_string());
        if i < pools && (i + 1 < block_count || pools <= block_count) {
            items.push("maxpool(2)".to_string());
        }
    }
    for _ in block_count..pools {
        items.push("maxpool(2)".to_string());
    }
    if global {
        items.push("gap".to_string());
    }
    if !dense.is_empty() {
        items.push("flatten".to_string());
        items.extend(dense);
    }
    Some(items.join(" "))
}
