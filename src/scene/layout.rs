//! Where every cube goes: pure arithmetic from the model's shapes and the arena's offset
//! table, no device. The renderer uploads it once, the picker ray-casts against it and the
//! overlay asks it where to draw the labels, so all three agree by construction.
//!
//! The scene is a row of boards on the ground plane (`y = 0`), one per drawn activation,
//! placed one after another along the network's depth, world `+x`: input on the left,
//! output on the right. A board holds one tile per channel; tiles sit in a grid whose
//! columns run along `x` and rows along `z`, and inside a tile image column `x` runs along
//! world `+x` and image row `y` along world `+z`, so a digit reads upright when seen from
//! the front (`+z`) and above. A vector (dense layer) is one column of cubes along `z`, or
//! a block of columns when it is long. Every cube stands on its cell; its height and
//! colour encode its value.
//!
//! A flatten output aliases its input's region of the arena and holds the same values, so
//! it is **not drawn**: it would only repeat the pool layer before it. Picking a dense
//! layer's inputs maps flatten indices back onto that pool layer's cubes.

use glam::{Vec2, Vec3, Vec4Swizzles};

use super::camera::Camera;
use crate::gpu::ArenaLayout;
use crate::model::{LayerOp, Model, Shape};

/// Depth (extent along `z`, across the flow) of the deepest channel board, world units.
/// Every map layer after the input shares one cell size, so a pool layer's board is
/// visibly smaller than the conv layer before it: the downsampling is there to see.
const BOARD_DEPTH: f32 = 100.0;
/// The input gets its own, larger cells: it is the picture a person drew.
const INPUT_DEPTH: f32 = 44.0;
/// Dense layers get their own cells too; their columns aim for this depth.
const VECTOR_DEPTH: f32 = 40.0;
/// Board depth / board width that the channel-tile grids aim for. Deep, narrow boards keep
/// the row of layers about as long as it is deep, so the whole network fills a 16:9 view
/// from the front and above instead of a thin diagonal band.
const MAP_ASPECT: f32 = 6.0;
const VECTOR_ASPECT: f32 = 4.0;
/// Largest cell edge in world units, so small layers (the 10 outputs) stay cubes and do
/// not become towers.
const MAX_CELL: f32 = 4.0;
/// Free space between two boards along `x`, in world units.
const BOARD_SPACING: f32 = 7.0;
/// A vector up to this long is one row across the view (the outputs, each labelled in
/// front); a longer one is a grid.
const MAX_ROW: usize = 16;
/// How far in front of a board its label sits, and in front of an output cube its class.
const LABEL_GAP: f32 = 3.0;
const CLASS_GAP: f32 = 1.2;
/// Edge of a cube's footprint as a fraction of its cell: the gaps make single cubes visible.
pub const CUBE_FOOTPRINT: f32 = 0.78;
/// Height of a cube whose value is the layer's minimum, in cells: a flat tile, still visible.
pub const MIN_HEIGHT_CELLS: f32 = 0.12;
/// Height of the layer's maximum in cells, capped in world units by [`MAX_HEIGHT`].
const MAX_HEIGHT_CELLS: f32 = 5.0;
const MAX_HEIGHT: f32 = 6.0;
/// Smallest tallest cube, in world units: tiny conv cells still show relief.
const MIN_MAX_HEIGHT: f32 = 1.2;

/// Cubes one layer may draw (unless one channel plane alone is bigger): a wide layer
/// draws its first channels only, and says so in its label. Channels are stored one after
/// another, so the drawn cubes are a prefix of the activation and every index mapping
/// (shader, picker, inspector) stays the identity on them.
pub const MAX_CUBES_PER_LAYER: usize = 1 << 18;
/// Cubes of the whole scene that the per-layer share is cut from: many wide layers each
/// draw fewer channels (never less than one plane).
pub const MAX_CUBES: usize = 2 << 20;

/// What produced an activation; the picker walks back through these.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LayerKind {
    Input,
    /// The activation is the output of this layer operation.
    Op(LayerOp),
}

/// One drawn activation: its board, its cells, its label.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerPlacement {
    /// Activation index (0 = the input, `i + 1` = output of layer `i`), as in the arena.
    pub activation: usize,
    pub kind: LayerKind,
    /// Name of the layer (`input` for activation 0).
    pub name: String,
    pub shape: Shape,
    /// `"conv1 16×28×28"`, `"bn1 (batch norm) 16×28×28"`, and what is not drawn:
    /// `"conv1 64×224×224 (first 5 channels drawn)"`.
    pub label: String,
    /// Channels drawn as tiles (1 for a vector): all of them, or the first ones when the
    /// layer has more cubes than its share ([`MAX_CUBES_PER_LAYER`]).
    pub channels: usize,
    /// Rows and columns of cells in one tile. A vector of `n` is `rows × cols ≥ n` cells
    /// filled row by row (the last row may be short).
    pub rows: usize,
    pub cols: usize,
    /// Cubes drawn for this layer: `shape.len()`, or the drawn prefix of it.
    pub len: usize,
    /// Tiles per board row (along `x`) and board rows (along `z`).
    pub tile_cols: usize,
    pub tile_rows: usize,
    /// Edge of one cell in world units.
    pub cell: f32,
    /// Distance between the starts of neighbouring tiles along `x` and `z`.
    pub tile_step: Vec2,
    /// Minimum corner (smallest `x` and `z`, at `y = 0`) of tile 0.
    pub origin: Vec3,
    /// Extent of the whole board along `x` and `z`.
    pub size: Vec2,
    /// Height of the layer's largest value, world units (the smallest is
    /// `MIN_HEIGHT_CELLS * cell`).
    pub max_height: f32,
    /// Global index of this layer's first cube (instances are numbered layer by layer).
    pub instance_start: u32,
    /// Where the label goes: the middle of the board's front edge, on the ground.
    pub label_anchor: Vec3,
}

impl LayerPlacement {
    /// Height of a cube whose value normalised by the layer's range is `t` (0..1), the
    /// same formula as `cube_height` in `shaders/cubes.wgsl`.
    pub fn cube_height(&self, t: f32) -> f32 {
        MIN_HEIGHT_CELLS * self.cell + t.clamp(0.0, 1.0) * self.max_height
    }

    /// `(channel, row, col)` of element `element` of this activation (C, H, W order; a
    /// vector is channel 0 filled row by row).
    pub fn cell_of(&self, element: usize) -> (usize, usize, usize) {
        let plane = self.rows * self.cols;
        let (c, rest) = (element / plane, element % plane);
        (c, rest / self.cols, rest % self.cols)
    }

    /// Inverse of [`LayerPlacement::cell_of`]; `None` outside the layer.
    pub fn element_of(&self, channel: usize, row: usize, col: usize) -> Option<usize> {
        if channel >= self.channels || row >= self.rows || col >= self.cols {
            return None;
        }
        let e = (channel * self.rows + row) * self.cols + col;
        (e < self.len).then_some(e)
    }

    /// Minimum corner of tile `channel` on the ground.
    pub fn tile_origin(&self, channel: usize) -> Vec3 {
        let (tc, tr) = (channel % self.tile_cols, channel / self.tile_cols);
        self.origin
            + Vec3::new(
                tc as f32 * self.tile_step.x,
                0.0,
                tr as f32 * self.tile_step.y,
            )
    }

    /// Centre of the cell under element `element`, on the ground.
    pub fn cell_centre(&self, element: usize) -> Vec3 {
        let (c, y, x) = self.cell_of(element);
        self.tile_origin(c)
            + Vec3::new(
                (x as f32 + 0.5) * self.cell,
                0.0,
                (y as f32 + 0.5) * self.cell,
            )
    }

    /// Extent of one tile along `x` and `z`.
    pub fn tile_size(&self) -> Vec2 {
        Vec2::new(self.cols as f32, self.rows as f32) * self.cell
    }
}

/// A label the overlay draws: a layer's name and shape, or a class beside its output cube.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneLabel {
    pub text: String,
    pub anchor: Vec3,
    pub kind: LabelKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabelKind {
    Layer,
    Class,
}

/// Every drawn layer's placement, in activation order, and the instance numbering.
#[derive(Clone, Debug, PartialEq)]
pub struct SceneLayout {
    pub layers: Vec<LayerPlacement>,
    /// For each activation index: the position of its placement in `layers`, `None` for a
    /// flatten output (not drawn).
    pub drawn: Vec<Option<usize>>,
    /// Arena slot of each activation (offsets of image 0, aliases), copied from the arena.
    pub arena: ArenaLayout,
    /// The labels of the output cubes, in class order.
    pub classes: Vec<String>,
    instance_count: u32,
    bounds: (Vec3, Vec3),
}

/// Tile grid `(tile_cols, tile_rows)` for `channels` tiles of `rows × cols` cells with
/// `gap` cells between tiles: the one whose board aspect (depth / width) is closest to
/// `target`, preferring column counts that divide the channels (no ragged last row).
fn tile_grid(channels: usize, rows: usize, cols: usize, gap: f32, target: f32) -> (usize, usize) {
    let aspect = |tc: usize| {
        let tr = channels.div_ceil(tc);
        let depth = tr as f32 * rows as f32 + (tr - 1) as f32 * gap;
        let width = tc as f32 * cols as f32 + (tc - 1) as f32 * gap;
        depth / width
    };
    let score = |tc: usize| (aspect(tc) / target).ln().abs();
    let divides: Vec<usize> = (1..=channels)
        .filter(|tc| channels.is_multiple_of(*tc))
        .collect();
    // Divisors of a prime count give 1 × n or n × 1; then a ragged grid reads better.
    let pool: Vec<usize> = if divides.len() > 2 || channels <= 3 {
        divides
    } else {
        (1..=channels).collect()
    };
    let best = pool
        .into_iter()
        .min_by(|&a, &b| score(a).total_cmp(&score(b)))
        .unwrap_or(1);
    (best, channels.div_ceil(best))
}

/// What a layer's board says: its name, what kind of layer it is when the name may not
/// tell (the layers beyond conv / relu / pool / dense, often named by an exporter), its
/// shape, and how much of it is drawn when not all.
fn layer_label(name: &str, kind: LayerKind, shape: Shape, channels: usize, len: usize) -> String {
    let tag = match kind {
        LayerKind::Op(op) => kind_tag(&op),
        LayerKind::Input => None,
    };
    let mut label = match tag {
        // `leaky_relu2` already says "leaky relu": compare without separators.
        Some(tag) if !squashed(name).contains(&squashed(tag)) => {
            format!("{name} ({tag}) {shape}")
        }
        _ => format!("{name} {shape}"),
    };
    if len < shape.len() {
        match shape {
            Shape::Map { .. } => label += &format!(" (first {channels} channels drawn)"),
            Shape::Vector { .. } => label += &format!(" (first {len} drawn)"),
        }
    }
    label
}

/// Lower case without spaces, underscores or hyphens.
fn squashed(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, ' ' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A short readable name of the layer types beyond the classic five.
pub fn kind_tag(op: &LayerOp) -> Option<&'static str> {
    Some(match op {
        LayerOp::BatchNorm { .. } => "batch norm",
        LayerOp::LeakyRelu { .. } => "leaky relu",
        LayerOp::Sigmoid => "sigmoid",
        LayerOp::Tanh => "tanh",
        LayerOp::Dropout => "dropout",
        LayerOp::AvgPool2d(_) => "avg pool",
        LayerOp::GlobalAvgPool => "GAP",
        _ => return None,
    })
}

/// Cells of a vector of `len` as `(rows, cols)`: up to [`MAX_ROW`] one row along `x`, so
/// the camera sees every cube's front and its label (the outputs); longer ones a grid of
/// big cubes shaped like the channel boards.
fn vector_grid(len: usize) -> (usize, usize) {
    if len <= MAX_ROW {
        return (1, len.max(1));
    }
    let (cols, rows) = tile_grid(len, 1, 1, 0.0, VECTOR_ASPECT);
    (rows, cols)
}

impl SceneLayout {
    /// Lays out every activation of `model` (flatten outputs skipped, see the module docs).
    /// `arena` must be the network's own [`ArenaLayout`], so the renderer reads the right
    /// offsets.
    pub fn new(model: &Model, arena: &ArenaLayout) -> SceneLayout {
        /// A drawn activation's grid before it has a cell size.
        struct Grid {
            activation: usize,
            kind: LayerKind,
            shape: Shape,
            channels: usize,
            rows: usize,
            cols: usize,
            gap: f32,
            tiles: (usize, usize),
            cells: Vec2,
            len: usize,
        }
        let shapes = model.activation_shapes();
        let drawn_layers = shapes.len().max(1);
        let share = (MAX_CUBES / drawn_layers).min(MAX_CUBES_PER_LAYER);
        let mut grids = Vec::new();
        let mut drawn = Vec::with_capacity(shapes.len());
        for (j, shape) in shapes.iter().enumerate() {
            let kind = if j == 0 {
                LayerKind::Input
            } else {
                LayerKind::Op(model.layers[j - 1].plan.op)
            };
            if kind == LayerKind::Op(LayerOp::Flatten) {
                drawn.push(None);
                continue;
            }
            let (channels, rows, cols, len) = match *shape {
                Shape::Map {
                    channels,
                    height,
                    width,
                } => {
                    let plane = (height * width).max(1);
                    let drawn = (share / plane).clamp(1, channels.max(1));
                    (drawn, height, width, drawn * plane)
                }
                Shape::Vector { len } => {
                    let drawn = len.min(share.max(MAX_ROW));
                    let (rows, cols) = vector_grid(drawn);
                    (1, rows, cols, drawn)
                }
            };
            // Gaps between tiles scale with the tile so small maps do not drown in space.
            let gap = (rows.max(cols) as f32 * 0.12).round().max(1.0);
            let (tile_cols, tile_rows) = tile_grid(channels, rows, cols, gap, MAP_ASPECT);
            let cells = Vec2::new(
                tile_cols as f32 * cols as f32 + (tile_cols - 1) as f32 * gap,
                tile_rows as f32 * rows as f32 + (tile_rows - 1) as f32 * gap,
            );
            drawn.push(Some(grids.len()));
            grids.push(Grid {
                activation: j,
                kind,
                shape: *shape,
                channels,
                rows,
                cols,
                gap,
                tiles: (tile_cols, tile_rows),
                cells,
                len,
            });
        }
        let is_map = |g: &Grid| matches!(g.shape, Shape::Map { .. }) && g.activation > 0;
        let deepest_map = grids
            .iter()
            .filter(|g| is_map(g))
            .map(|g| g.cells.y)
            .fold(1.0f32, f32::max);
        let map_cell = (BOARD_DEPTH / deepest_map).min(MAX_CELL);

        let mut layers = Vec::with_capacity(grids.len());
        let mut instance = 0u32;
        let mut cursor = 0.0f32;
        for g in grids {
            let cell = if g.activation == 0 {
                (INPUT_DEPTH / g.cells.y).min(MAX_CELL)
            } else if is_map(&g) {
                map_cell
            } else {
                (VECTOR_DEPTH / g.cells.y).min(MAX_CELL)
            };
            let size = g.cells * cell;
            let origin = Vec3::new(cursor, 0.0, -size.y / 2.0);
            cursor += size.x + BOARD_SPACING;
            let name = arena
                .slots
                .get(g.activation)
                .map(|s| s.name.clone())
                .unwrap_or_else(|| format!("activation {}", g.activation));
            let label = layer_label(&name, g.kind, g.shape, g.channels, g.len);
            let len = g.len;
            layers.push(LayerPlacement {
                activation: g.activation,
                kind: g.kind,
                name,
                shape: g.shape,
                label,
                channels: g.channels,
                rows: g.rows,
                cols: g.cols,
                len,
                tile_cols: g.tiles.0,
                tile_rows: g.tiles.1,
                cell,
                tile_step: Vec2::new(g.cols as f32 + g.gap, g.rows as f32 + g.gap) * cell,
                origin,
                size,
                max_height: (MAX_HEIGHT_CELLS * cell).clamp(MIN_MAX_HEIGHT, MAX_HEIGHT),
                instance_start: instance,
                // A row of labelled cubes keeps its own labels nearest; the name goes beyond.
                label_anchor: origin
                    + Vec3::new(
                        size.x / 2.0,
                        0.0,
                        size.y + LABEL_GAP + if g.rows == 1 { 2.0 * CLASS_GAP } else { 0.0 },
                    ),
            });
            instance = instance.saturating_add(u32::try_from(len).unwrap_or(u32::MAX));
        }
        // Centre the row on the origin so the camera's default target is (0, 0, 0).
        let shift = Vec3::new(-(cursor - BOARD_SPACING) / 2.0, 0.0, 0.0);
        let mut lo = Vec3::splat(f32::INFINITY);
        let mut hi = Vec3::splat(f32::NEG_INFINITY);
        for l in &mut layers {
            l.origin += shift;
            l.label_anchor += shift;
            lo = lo.min(l.origin);
            hi = hi.max(l.origin + Vec3::new(l.size.x, l.max_height, l.size.y));
        }
        if layers.is_empty() {
            (lo, hi) = (Vec3::ZERO, Vec3::ZERO);
        }
        SceneLayout {
            layers,
            drawn,
            arena: arena.clone(),
            classes: model.architecture.classes.clone(),
            instance_count: instance,
            bounds: (lo, hi),
        }
    }

    /// Cubes drawn per frame: the sum of the sizes of every drawn activation (all but
    /// flatten outputs).
    pub fn instance_count(&self) -> u32 {
        self.instance_count
    }

    /// The corners of every board, on the ground and at its tallest cubes' height: what
    /// the camera frames ([`Camera::fit_points`]).
    pub fn outline(&self) -> Vec<Vec3> {
        self.layers
            .iter()
            .flat_map(|l| {
                (0..8).map(move |i| {
                    l.origin
                        + Vec3::new(
                            if i & 1 == 0 { 0.0 } else { l.size.x },
                            if i & 2 == 0 { 0.0 } else { l.max_height },
                            if i & 4 == 0 { 0.0 } else { l.size.y },
                        )
                })
            })
            .collect()
    }

    /// The default view of this scene in a viewport of `aspect` (width / height): from the
    /// front-left and above, every board in view, from the direction (among a few) in which
    /// the network covers most of the viewport. A long network seen square-on is a thin
    /// strip across the middle; seen along a diagonal it fills the area.
    pub fn home_camera(&self, aspect: f32) -> Camera {
        let outline = self.outline();
        let mut best = self.camera_from(aspect, super::camera::HOME_YAW, super::camera::HOME_PITCH);
        let mut best_fill = screen_fill(&best, &outline, aspect);
        for yaw in HOME_YAWS {
            for pitch in HOME_PITCHES {
                let camera = self.camera_from(aspect, yaw, pitch);
                let fill = screen_fill(&camera, &outline, aspect);
                if fill > best_fill {
                    (best, best_fill) = (camera, fill);
                }
            }
        }
        best
    }

    /// The fraction of a viewport of `aspect` the network covers seen by `camera` (the
    /// area of its outline's projected convex hull), 0..1.
    pub fn screen_fill(&self, camera: &Camera, aspect: f32) -> f32 {
        screen_fill(camera, &self.outline(), aspect)
    }

    /// A camera from `yaw`, `pitch` (degrees) at the distance that frames every board.
    pub fn camera_from(&self, aspect: f32, yaw: f32, pitch: f32) -> Camera {
        Camera::fit_points(&self.outline(), aspect, yaw, pitch)
    }

    /// Axis-aligned box around every board and its tallest possible cubes.
    pub fn bounds(&self) -> (Vec3, Vec3) {
        self.bounds
    }

    /// The placement drawing activation `activation`; for a flatten output, the placement
    /// of the activation it aliases (its values are drawn there).
    pub fn placement(&self, activation: usize) -> Option<&LayerPlacement> {
        let slot = self.arena.slots.get(activation)?;
        let shown = slot.alias_of.unwrap_or(activation);
        self.drawn
            .get(shown)
            .copied()
            .flatten()
            .map(|i| &self.layers[i])
    }

    /// Global instance index of element `element` of activation `activation` (a flatten
    /// element maps onto the cube of the activation it aliases).
    pub fn instance_of(&self, activation: usize, element: usize) -> Option<u32> {
        let p = self.placement(activation)?;
        (element < p.len).then(|| p.instance_start + element as u32)
    }

    /// Activation and element of a global instance index.
    pub fn element_of_instance(&self, instance: u32) -> Option<(usize, usize)> {
        let i = self
            .layers
            .partition_point(|l| l.instance_start <= instance)
            .checked_sub(1)?;
        let l = &self.layers[i];
        let e = (instance - l.instance_start) as usize;
        (e < l.len).then_some((l.activation, e))
    }

    /// Every label in world space: one per drawn layer, and one per output cube with its
    /// class name (when the last activation is a vector with one value per class).
    pub fn labels(&self) -> Vec<SceneLabel> {
        let mut labels: Vec<SceneLabel> = self
            .layers
            .iter()
            .map(|l| SceneLabel {
                text: l.label.clone(),
                anchor: l.label_anchor,
                kind: LabelKind::Layer,
            })
            .collect();
        if let Some(out) = self.layers.last()
            && out.len == self.classes.len()
            && out.channels == 1
        {
            for (i, class) in self.classes.iter().enumerate() {
                let (_, y, x) = out.cell_of(i);
                let at = out.tile_origin(0)
                    + Vec3::new(
                        (x as f32 + 0.5) * out.cell,
                        0.0,
                        (y as f32 + 1.0) * out.cell + CLASS_GAP,
                    );
                labels.push(SceneLabel {
                    text: class.clone(),
                    anchor: at,
                    kind: LabelKind::Class,
                });
            }
        }
        labels
    }

    /// Screen positions (pixels, origin top-left, in the units of `viewport`) of every label
    /// in front of the camera, for the overlay to draw: layer names with their shapes, and
    /// the class of each output cube. Labels behind the camera are left out.
    pub fn project_labels(&self, camera: &Camera, viewport: [f32; 2]) -> Vec<(String, [f32; 2])> {
        self.project_labels_detailed(camera, viewport)
            .into_iter()
            .map(|(label, at)| (label.text, at))
            .collect()
    }

    /// [`SceneLayout::project_labels`] keeping each label's kind, so the overlay can style
    /// class labels differently.
    pub fn project_labels_detailed(
        &self,
        camera: &Camera,
        viewport: [f32; 2],
    ) -> Vec<(SceneLabel, [f32; 2])> {
        let [w, h] = viewport;
        if w <= 0.0 || h <= 0.0 {
            return Vec::new();
        }
        let view_proj = camera.view_proj(w / h);
        self.labels()
            .into_iter()
            .filter_map(|label| {
                let clip = view_proj * label.anchor.extend(1.0);
                if clip.w <= 1e-6 {
                    return None;
                }
                let ndc = clip.xy() / clip.w;
                let at = [(ndc.x + 1.0) * 0.5 * w, (1.0 - ndc.y) * 0.5 * h];
                Some((label, at))
            })
            .collect()
    }
}

/// The yaws and pitches (degrees) the home view chooses among: all from the front-left and
/// above, so the input is near and the output far.
const HOME_YAWS: [f32; 6] = [-60.0, -50.0, -40.0, -30.0, -20.0, -10.0];
const HOME_PITCHES: [f32; 4] = [34.0, 44.0, 54.0, 64.0];

/// The area of the convex hull of `points` seen by `camera`, as a fraction of the viewport.
fn screen_fill(camera: &Camera, points: &[Vec3], aspect: f32) -> f32 {
    let view_proj = camera.view_proj(aspect);
    let mut projected: Vec<(f32, f32)> = points
        .iter()
        .filter_map(|p| {
            let clip = view_proj * p.extend(1.0);
            (clip.w > 1e-4).then(|| (clip.x / clip.w, clip.y / clip.w))
        })
        .collect();
    projected.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    projected.dedup();
    if projected.len() < 3 {
        return 0.0;
    }
    // Andrew's monotone chain.
    let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
    };
    let mut hull: Vec<(f32, f32)> = Vec::with_capacity(2 * projected.len());
    for pass in 0..2 {
        let start = hull.len();
        let points: Box<dyn Iterator<Item = &(f32, f32)>> = if pass == 0 {
            Box::new(projected.iter())
        } else {
            Box::new(projected.iter().rev())
        };
        for &p in points {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
    }
    let twice_area: f32 = (0..hull.len())
        .map(|i| {
            let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
            a.0 * b.1 - b.0 * a.1
        })
        .sum();
    // Normalised device coordinates span 2 × 2.
    (twice_area.abs() / 2.0 / 4.0).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_grid_prefers_the_target_aspect() {
        // 16 maps of 28×28: 2 columns × 8 rows is closest to 2:1 deep.
        // 16 maps of 28×28 with 3-cell gaps: 2 × 8 (aspect 4.2) beats 1 × 16 (18).
        assert_eq!(tile_grid(16, 28, 28, 3.0, 6.0), (2, 8));
        assert_eq!(tile_grid(1, 28, 28, 3.0, 6.0), (1, 1));
        // 32 maps of 7×7: 2 × 16 (8.5) beats 4 × 8 (2.0).
        assert_eq!(tile_grid(32, 7, 7, 1.0, 6.0), (2, 16));
        assert_eq!(tile_grid(32, 7, 7, 1.0, 2.0), (4, 8));
    }

    #[test]
    fn long_vectors_become_several_columns() {
        assert_eq!(vector_grid(10), (1, 10));
        assert_eq!(vector_grid(16), (1, 16));
        let (rows, cols) = vector_grid(64);
        assert!(
            rows * cols >= 64 && rows >= cols && cols > 1,
            "{rows}×{cols}"
        );
        let (rows, cols) = vector_grid(1568);
        assert!(rows * cols >= 1568 && rows > cols, "{rows}×{cols}");
    }

    #[test]
    fn new_layer_types_say_what_they_are_unless_their_name_does() {
        use crate::model::builders::{
            avgpool, batch_norm, conv, dense, dropout, global_avg_pool, leaky_relu, sigmoid, tanh,
        };
        let mut arch = crate::model::default_architecture();
        arch.layers = vec![
            conv("conv1", 1, 4, 3, 1, 1),
            batch_norm("bn1", 4),
            leaky_relu("act1", 0.2),
            leaky_relu("leaky_relu1", 0.2),
            sigmoid("sigmoid1"),
            tanh("t1"),
            dropout("drop", 0.5),
            avgpool("pool", 2, 2, 0),
            global_avg_pool("gap"),
            crate::model::LayerSpec::Flatten {
                name: "flatten".into(),
            },
            dense("fc", 4, 10),
        ];
        let model = Model::filled(arch, || 0.1).expect("a valid model");
        let layout = SceneLayout::new(&model, &ArenaLayout::new(&model, 1));
        let labels: Vec<&str> = layout.layers.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "input 1×28×28",
                "conv1 4×28×28",
                "bn1 (batch norm) 4×28×28",
                "act1 (leaky relu) 4×28×28",
                "leaky_relu1 4×28×28",
                "sigmoid1 4×28×28",
                "t1 (tanh) 4×28×28",
                "drop (dropout) 4×28×28",
                "pool (avg pool) 4×14×14",
                "gap 4×1×1",
                "fc 10",
            ]
        );
        // A C×1×1 map: one cell per channel tile, all drawn.
        let gap = layout.placement(9).expect("gap drawn");
        assert_eq!((gap.channels, gap.rows, gap.cols, gap.len), (4, 1, 1, 4));
    }
}
