//! The unit inspector: the arithmetic of the clicked cube, term by term
//! ([`crate::inspect::UnitArithmetic`]). A conv unit shows, per input channel, the input
//! patch, the kernel and their element-wise products as small heat grids (values on hover),
//! then Σ, + bias, = pre-activation and the ReLU; a pool unit its window with the winner
//! outlined; a dense unit its largest positive and negative terms. Every shown number comes
//! from one readback of the unit's source activation for the canvas's input.

use egui::{Color32, Rect, RichText, Sense, Stroke, Ui, Vec2};

use super::theme;
use crate::inspect::{
    AvgWindow, ElementwiseUnit, PlaneMean, PoolWindow, UnitArithmetic, WeightedSum,
};

/// Side of one cell of a heat grid, in points.
const CELL: f32 = 11.0;
/// Terms listed under "largest contributions".
const RANKED: usize = 8;
/// Input channels drawn as grids before the rest are only summed.
const MAX_CHANNEL_ROWS: usize = 64;

/// What the inspector shows this frame.
#[derive(Clone, Copy, Debug)]
pub struct InspectorView<'a> {
    /// The unit, e.g. `relu2 · channel 5 · row 3, col 4`.
    pub title: &'a str,
    /// Name of the activation the terms read (the layer's input), e.g. `pool1`.
    pub source: &'a str,
    /// The arithmetic for the canvas's input, or `None` while it is read back.
    pub arithmetic: Option<&'a UnitArithmetic>,
    /// Grad-CAM's gradient of the explained class's logit at this unit, and that class,
    /// when Grad-CAM's backward pass reached the unit.
    pub gradient: Option<(f32, &'a str)>,
    /// For a class logit: what the network thinks the class looks like (an input optimised
    /// on the GPU to excite the logit; ink 0–255, `side × side`) and a caption, as far as
    /// its optimisation has come.
    pub picture: Option<(&'a [u8], usize, &'a str)>,
}

pub fn show(ui: &mut Ui, view: &InspectorView) {
    ui.label(RichText::new(view.title).strong().color(theme::TEXT));
    let Some(arithmetic) = view.arithmetic else {
        ui.label(RichText::new("Computing…").color(theme::WEAK_TEXT));
        return;
    };
    match arithmetic {
        UnitArithmetic::Input => {
            ui.label("A pixel of the model's input: a value, not a computation.");
        }
        UnitArithmetic::Conv {
            sum,
            geometry,
            out_channel,
        } => {
            ui.label(
                RichText::new(format!(
                    "{}×{} kernel {out_channel} over {} channels of {} (stride {}, padding {})",
                    geometry.kernel,
                    geometry.kernel,
                    geometry.in_channels,
                    view.source,
                    geometry.stride,
                    geometry.padding
                ))
                .color(theme::WEAK_TEXT),
            );
            conv_grids(ui, sum, geometry.kernel, geometry.in_channels);
            totals(ui, sum);
            ranked(ui, sum, |i| {
                let per = geometry.kernel * geometry.kernel;
                format!(
                    "ch {} ({}, {})",
                    i / per,
                    i % per / geometry.kernel,
                    i % geometry.kernel
                )
            });
        }
        UnitArithmetic::Dense { sum } => {
            ui.label(
                RichText::new(format!("{} inputs from {}", sum.terms.len(), view.source))
                    .color(theme::WEAK_TEXT),
            );
            totals(ui, sum);
            ranked(ui, sum, |i| format!("{} [{i}]", view.source));
        }
        UnitArithmetic::Pool(window) => pool(ui, window, view.source),
        UnitArithmetic::Elementwise(unit) => elementwise(ui, unit, view.source),
        UnitArithmetic::AvgPool(window) => avg_pool(ui, window, view.source),
        UnitArithmetic::GlobalAvgPool(mean) => plane_mean(ui, mean, view.source),
    }
    if let Some((pixels, side, caption)) = view.picture
        && pixels.len() == side * side
        && side > 0
    {
        ui.separator();
        ui.label(RichText::new(caption).color(theme::WEAK_TEXT));
        let texture = picture_texture(ui, pixels, side);
        ui.add(egui::Image::new((texture.id(), Vec2::splat(112.0))));
    }
    if let Some((gradient, class)) = view.gradient {
        ui.separator();
        ui.monospace(format!(
            "Grad-CAM gradient d logit({class}) / d unit = {gradient:+.5}"
        ))
        .on_hover_text("How much the explained class's logit moves per unit of this value");
    }
}

/// The picture's texture, made again only when its pixels change (it grows a few times a
/// second, frames come faster); kept in egui's memory, one at a time, so the old one is
/// freed when it is replaced.
fn picture_texture(ui: &Ui, pixels: &[u8], side: usize) -> egui::TextureHandle {
    let hash = pixels.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let id = egui::Id::unique("cnnviz class picture");
    let cached = ui
        .ctx()
        .data(|d| d.get_temp::<(u64, egui::TextureHandle)>(id))
        .filter(|(h, _)| *h == hash);
    if let Some((_, texture)) = cached {
        return texture;
    }
    let image = egui::ColorImage::from_gray([side, side], pixels);
    let texture =
        ui.ctx()
            .load_texture("cnnviz class picture", image, egui::TextureOptions::NEAREST);
    ui.ctx()
        .data_mut(|d| d.insert_temp(id, (hash, texture.clone())));
    texture
}

/// Blue for negative, orange for positive, transparent at zero, scaled by `scale`.
pub(super) fn heat(value: f32, scale: f32) -> Color32 {
    let t = if scale > 0.0 {
        (value / scale).clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let (r, g, b) = if t >= 0.0 {
        (255.0, 140.0, 20.0)
    } else {
        (40.0, 120.0, 255.0)
    };
    let a = t.abs();
    let mix = |c: f32, bg: u8| (f32::from(bg) * (1.0 - a) + c * a).round() as u8;
    let bg = theme::SURFACE;
    Color32::from_rgb(mix(r, bg.r()), mix(g, bg.g()), mix(b, bg.b()))
}

/// One k×k grid of `values`, each cell's value on hover; `marked` is outlined.
fn grid(ui: &mut Ui, values: &[f32], k: usize, scale: f32, marked: Option<usize>) {
    let side = k as f32 * CELL;
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(side), Sense::hover());
    let painter = ui.painter_at(rect);
    for (i, &v) in values.iter().enumerate() {
        let min = rect.min + Vec2::new((i % k) as f32 * CELL, (i / k) as f32 * CELL);
        let cell = Rect::from_min_size(min, Vec2::splat(CELL - 1.0));
        painter.rect_filled(cell, 0.0, heat(v, scale));
        if marked == Some(i) {
            painter.rect_stroke(
                cell,
                0.0,
                Stroke::new(2.0, theme::TARGET),
                egui::StrokeKind::Inside,
            );
        }
    }
    if let Some(pos) = response.hover_pos() {
        let local = pos - rect.min;
        let (col, row) = ((local.x / CELL) as usize, (local.y / CELL) as usize);
        if let Some(v) = values.get(row * k + col).filter(|_| col < k) {
            response.on_hover_text(format!("row {row}, col {col}: {v:.4}"));
        }
    }
}

fn conv_grids(ui: &mut Ui, sum: &WeightedSum, k: usize, in_channels: usize) {
    let per = k * k;
    let max_abs = |f: &dyn Fn(&crate::inspect::Term) -> f32| {
        sum.terms.iter().map(|t| f(t).abs()).fold(0.0f32, f32::max)
    };
    let (input_scale, weight_scale, product_scale) = (
        max_abs(&|t| t.input),
        max_abs(&|t| t.weight),
        max_abs(&|t| (t.product()) as f32),
    );
    egui::ScrollArea::vertical()
        .id_salt("cnnviz inspector grids")
        .max_height(260.0)
        .show(ui, |ui| {
            egui::Grid::new("cnnviz inspector conv")
                .spacing([6.0, 4.0])
                .show(ui, |ui| {
                    ui.label(RichText::new("ch").color(theme::WEAK_TEXT));
                    ui.label(RichText::new("input").color(theme::WEAK_TEXT));
                    ui.label(RichText::new("× kernel").color(theme::WEAK_TEXT));
                    ui.label(RichText::new("= products").color(theme::WEAK_TEXT));
                    ui.label(RichText::new("Σ").color(theme::WEAK_TEXT));
                    ui.end_row();
                    for ic in 0..in_channels.min(MAX_CHANNEL_ROWS) {
                        let terms = &sum.terms[ic * per..(ic + 1) * per];
                        let inputs: Vec<f32> = terms.iter().map(|t| t.input).collect();
                        let weights: Vec<f32> = terms.iter().map(|t| t.weight).collect();
                        let products: Vec<f32> = terms.iter().map(|t| t.product() as f32).collect();
                        ui.label(format!("{ic}"));
                        grid(ui, &inputs, k, input_scale, None);
                        grid(ui, &weights, k, weight_scale, None);
                        grid(ui, &products, k, product_scale, None);
                        let channel_sum: f64 = terms.iter().map(|t| t.product()).sum();
                        ui.label(format!("{channel_sum:+.4}"));
                        ui.end_row();
                    }
                });
            if in_channels > MAX_CHANNEL_ROWS {
                ui.label(
                    RichText::new(format!(
                        "… {} more channels, included in the sum",
                        in_channels - MAX_CHANNEL_ROWS
                    ))
                    .color(theme::WEAK_TEXT),
                );
            }
        });
}

/// Σ terms, + bias, = pre-activation, then the ReLU when there is one.
fn totals(ui: &mut Ui, sum: &WeightedSum) {
    egui::Grid::new("cnnviz inspector totals")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label(format!("Σ {} terms", sum.terms.len()));
            ui.monospace(format!("{:+.5}", sum.sum));
            ui.end_row();
            ui.label("+ bias");
            ui.monospace(format!("{:+.5}", sum.bias));
            ui.end_row();
            ui.label("= pre-activation");
            ui.monospace(format!("{:+.5}", sum.pre_activation));
            ui.end_row();
            if let Some(relu) = sum.relu {
                ui.label("ReLU: max(0, ·) =");
                ui.monospace(RichText::new(format!("{relu:+.5}")).color(theme::ACCENT));
                ui.end_row();
            }
        });
}

/// The largest |products| first, as bars.
fn ranked(ui: &mut Ui, sum: &WeightedSum, name: impl Fn(usize) -> String) {
    ui.label(RichText::new("Largest contributions").color(theme::WEAK_TEXT));
    let order = sum.ranked(RANKED);
    let scale = order
        .first()
        .map_or(0.0, |&i| sum.terms[i].product().abs() as f32);
    for i in order {
        let term = sum.terms[i];
        let p = term.product() as f32;
        ui.horizontal(|ui| {
            let (rect, _) = ui.allocate_exact_size(Vec2::new(60.0, 10.0), Sense::hover());
            let w = if scale > 0.0 { p.abs() / scale } else { 0.0 } * rect.width();
            ui.painter().rect_filled(
                Rect::from_min_size(rect.min, Vec2::new(w, rect.height())),
                0.0,
                heat(p, scale),
            );
            ui.monospace(format!(
                "{:+.3} × {:+.3} = {:+.4}  {}",
                term.weight,
                term.input,
                p,
                name(i)
            ));
        });
    }
}

fn pool(ui: &mut Ui, window: &PoolWindow, source: &str) {
    let values: Vec<f32> = window.elements.iter().map(|e| e.1).collect();
    let scale = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    ui.label(
        RichText::new(format!(
            "max of a {}×{} window of {source}",
            window.kernel, window.kernel
        ))
        .color(theme::WEAK_TEXT),
    );
    grid(ui, &values, window.kernel, scale, Some(window.winner));
    let (c, y, x) = window.winner_at;
    ui.monospace(format!(
        "max = {:+.5}  from {source} channel {c}, row {y}, col {x}",
        window.value()
    ));
}

/// `x → f(x)`: the formula with its constants, the input and the output.
fn elementwise(ui: &mut Ui, unit: &ElementwiseUnit, source: &str) {
    ui.label(RichText::new(unit.function.formula()).color(theme::WEAK_TEXT));
    egui::Grid::new("cnnviz inspector elementwise")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label(format!("x = {source} [{}]", unit.source));
            ui.monospace(format!("{:+.5}", unit.input));
            ui.end_row();
            ui.label("y = f(x)");
            ui.monospace(RichText::new(format!("{:+.5}", unit.output)).color(theme::ACCENT));
            ui.end_row();
        });
}

/// The window's values as a grid, their sum and the divisor.
fn avg_pool(ui: &mut Ui, window: &AvgWindow, source: &str) {
    let g = window.geometry;
    ui.label(
        RichText::new(format!(
            "mean of a {k}×{k} window of {source} (stride {}, padding {}{})",
            g.stride,
            g.padding,
            if g.count_include_pad {
                ", padded zeros counted"
            } else {
                ", padding not counted"
            },
            k = g.kernel,
        ))
        .color(theme::WEAK_TEXT),
    );
    let values: Vec<f32> = window.elements.iter().map(|e| e.1).collect();
    let scale = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    grid(ui, &values, window.cols.len().max(1), scale, None);
    egui::Grid::new("cnnviz inspector avg pool")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label(format!(
                "Σ {} values (rows {}..{}, cols {}..{})",
                values.len(),
                window.rows.start,
                window.rows.end,
                window.cols.start,
                window.cols.end
            ));
            ui.monospace(format!("{:+.5}", window.sum));
            ui.end_row();
            ui.label("÷ divisor");
            ui.monospace(format!("{}", window.divisor));
            ui.end_row();
            ui.label("= mean");
            ui.monospace(RichText::new(format!("{:+.5}", window.value)).color(theme::ACCENT));
            ui.end_row();
        });
}

/// Global average pooling: the plane's sum over its size.
fn plane_mean(ui: &mut Ui, mean: &PlaneMean, source: &str) {
    ui.label(
        RichText::new(format!(
            "global average pooling: the mean of channel {} of {source} ({}×{} values)",
            mean.channel, mean.height, mean.width
        ))
        .color(theme::WEAK_TEXT),
    );
    egui::Grid::new("cnnviz inspector gap")
        .num_columns(2)
        .show(ui, |ui| {
            ui.label(format!("Σ {} values", mean.source.len()));
            ui.monospace(format!("{:+.5}", mean.sum));
            ui.end_row();
            ui.label(format!("÷ {}", mean.source.len()));
            ui.monospace(RichText::new(format!("{:+.5}", mean.mean)).color(theme::ACCENT));
            ui.end_row();
        });
}
