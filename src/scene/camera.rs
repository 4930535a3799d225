//! An orbit camera with smooth damping: input moves a *goal* pose, and every frame
//! [`Camera::update`] eases the current pose towards it, frame-rate independently. The
//! window feeds it mouse, wheel, touch and keys; `cnnviz render` builds one from explicit
//! yaw, pitch and distance.

use glam::{Mat4, Vec2, Vec3};

/// Where the camera is: it looks at `target` from `distance` away, turned `yaw` degrees
/// about the vertical axis (0 = from the front, `+z`; positive turns towards `+x`) and
/// raised `pitch` degrees above the ground plane.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CameraPose {
    pub target: Vec3,
    pub yaw: f32,
    pub pitch: f32,
    pub distance: f32,
}

/// A ray from the eye through a point of the screen, for picking.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ray {
    pub origin: Vec3,
    /// Unit length.
    pub direction: Vec3,
}

/// Keyboard alternatives to the pointer gestures; one press is one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CameraStep {
    OrbitLeft,
    OrbitRight,
    OrbitUp,
    OrbitDown,
    PanLeft,
    PanRight,
    PanUp,
    PanDown,
    ZoomIn,
    ZoomOut,
}

/// Vertical field of view.
pub const FOV_Y_DEGREES: f32 = 30.0;
/// The default view: from the front-left and above, so the row of boards recedes gently
/// towards the output and every board's top is visible.
pub const HOME_YAW: f32 = -18.0;
pub const HOME_PITCH: f32 = 46.0;
/// Pitch limits: never under the ground by more than a little, never past straight down
/// (where yaw would flip).
pub const MIN_PITCH: f32 = -15.0;
pub const MAX_PITCH: f32 = 89.0;
/// Degrees per pixel of drag.
const ORBIT_PER_PIXEL: f32 = 0.3;
/// Distance factor per wheel notch (`delta = 1`).
const ZOOM_PER_STEP: f32 = 0.12;
/// Degrees, fraction of the view height, and wheel notches of one keyboard step.
const KEY_ORBIT: f32 = 7.5;
const KEY_PAN: f32 = 0.06;
const KEY_ZOOM: f32 = 1.0;
/// Damping rate per second: after `1/RATE` s the remaining motion is `1/e` of the start,
/// so a gesture settles in about a quarter of a second.
const DAMPING_RATE: f32 = 14.0;
/// Below these the current pose snaps to the goal and `update` reports rest.
const REST_ANGLE: f32 = 1e-3;
const REST_FRACTION: f32 = 1e-5;

/// Orbit/pan/zoom camera with damping; see the module docs.
#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    current: CameraPose,
    goal: CameraPose,
    home: CameraPose,
    /// Vertical field of view in radians.
    fov_y: f32,
    /// Sphere around the scene: sets the clip planes and the zoom limits.
    scene_centre: Vec3,
    scene_radius: f32,
}

impl Camera {
    /// A camera at `pose` (also its home for [`Camera::reset`]), angles clamped to the
    /// pitch limits and the distance to at least a small positive value. Non-finite
    /// values fall back to the home view's angles, a distance of 100 and the origin.
    pub fn new(pose: CameraPose) -> Camera {
        let radius = pose.distance.abs().max(1.0);
        let mut camera = Camera {
            current: pose,
            goal: pose,
            home: pose,
            fov_y: FOV_Y_DEGREES.to_radians(),
            scene_centre: pose.target,
            scene_radius: radius,
        };
        let clean = camera.clamped(pose);
        camera.current = clean;
        camera.goal = clean;
        camera.home = clean;
        camera
    }

    /// The home view of a scene whose bounding box is `bounds`: [`HOME_YAW`],
    /// [`HOME_PITCH`], and the distance at which the whole box fits a viewport of `aspect`
    /// (width / height).
    pub fn fit(bounds: (Vec3, Vec3), aspect: f32) -> Camera {
        Camera::fit_points(&box_corners(bounds), aspect, HOME_YAW, HOME_PITCH)
    }

    /// A camera seen from `yaw` and `pitch` degrees that frames every point of `points`
    /// (e.g. `SceneLayout::outline`) in a viewport of `aspect`; also its home pose.
    pub fn fit_points(points: &[Vec3], aspect: f32, yaw: f32, pitch: f32) -> Camera {
        let mut camera = Camera::new(CameraPose {
            target: Vec3::ZERO,
            yaw,
            pitch,
            distance: 100.0,
        });
        camera.fit_to(points, aspect);
        camera.snap();
        camera
    }

    /// Sets the goal (and the home pose) to frame `points` from the current goal's yaw and
    /// pitch. Every point is projected, so the fit is tight for the actual view direction,
    /// not for a bounding sphere. Non-finite points are ignored.
    pub fn fit_to(&mut self, points: &[Vec3], aspect: f32) {
        let points: Vec<Vec3> = points.iter().copied().filter(|p| p.is_finite()).collect();
        if points.is_empty() {
            return;
        }
        let aspect = if aspect.is_finite() && aspect > 0.0 {
            aspect
        } else {
            16.0 / 9.0
        };
        let lo = points.iter().fold(Vec3::INFINITY, |m, p| m.min(*p));
        let hi = points.iter().fold(Vec3::NEG_INFINITY, |m, p| m.max(*p));
        self.scene_centre = (lo + hi) / 2.0;
        self.scene_radius = ((hi - lo).length() / 2.0).max(1.0);
        let (yaw, pitch) = (self.goal.yaw, self.goal.pitch);
        let forward = -offset_direction(yaw, pitch);
        let right = forward.cross(Vec3::Y).normalize_or(Vec3::X);
        let up = right.cross(forward);
        let tan_y = (self.fov_y / 2.0).tan();
        let tan_x = tan_y * aspect;
        // Centre the points' projected extent in the view (so the margins left and right,
        // top and bottom match), then find the distance at which the outermost point
        // touches the frustum's side. A 5 % margin keeps the outermost cubes off the edge.
        let mut target = self.scene_centre;
        for _ in 0..3 {
            // Perspective makes "centred" depend on the distance; a few rounds settle it.
            let distance = self.fit_distance(&points, target, forward, right, up, tan_x, tan_y);
            let eye = target - forward * distance;
            let (mut sx, mut sy) = (
                (f32::INFINITY, f32::NEG_INFINITY),
                (f32::INFINITY, f32::NEG_INFINITY),
            );
            for p in &points {
                let v = *p - eye;
                let depth = v.dot(forward).max(1e-3);
                let (x, y) = (v.dot(right) / depth, v.dot(up) / depth);
                sx = (sx.0.min(x), sx.1.max(x));
                sy = (sy.0.min(y), sy.1.max(y));
            }
            let (cx, cy) = ((sx.0 + sx.1) / 2.0, (sy.0 + sy.1) / 2.0);
            target += (right * cx + up * cy) * distance;
        }
        let distance = self.fit_distance(&points, target, forward, right, up, tan_x, tan_y);
        self.goal = self.clamped(CameraPose {
            target,
            yaw,
            pitch,
            distance: distance * 1.05,
        });
        self.home = self.goal;
    }

    /// Smallest distance from `target` along `-forward` at which every point lies inside
    /// the frustum of half-angle tangents `tan_x`, `tan_y`.
    #[allow(clippy::too_many_arguments)]
    fn fit_distance(
        &self,
        points: &[Vec3],
        target: Vec3,
        forward: Vec3,
        right: Vec3,
        up: Vec3,
        tan_x: f32,
        tan_y: f32,
    ) -> f32 {
        points.iter().fold(0.0f32, |distance, p| {
            let v = *p - target;
            let depth = v.dot(forward);
            let need_x = v.dot(right).abs() / tan_x - depth;
            let need_y = v.dot(up).abs() / tan_y - depth;
            distance.max(need_x).max(need_y)
        })
    }

    fn clamped(&self, pose: CameraPose) -> CameraPose {
        let finite_or = |v: f32, fallback: f32| if v.is_finite() { v } else { fallback };
        let (min_d, max_d) = self.distance_limits();
        CameraPose {
            target: if pose.target.is_finite() {
                pose.target
            } else {
                Vec3::ZERO
            },
            yaw: finite_or(pose.yaw, HOME_YAW),
            pitch: finite_or(pose.pitch, HOME_PITCH).clamp(MIN_PITCH, MAX_PITCH),
            distance: finite_or(pose.distance, 100.0).clamp(min_d, max_d),
        }
    }

    /// Zoom limits: from close enough to read one cube to far enough to see the scene as
    /// a small object.
    pub fn distance_limits(&self) -> (f32, f32) {
        (self.scene_radius * 0.01, self.scene_radius * 8.0)
    }

    /// Moves the current pose towards the goal by `dt` seconds of damping. Returns whether
    /// it is still moving (the window keeps redrawing while it is).
    pub fn update(&mut self, dt: f32) -> bool {
        if !dt.is_finite() || dt <= 0.0 {
            return self.is_moving();
        }
        let k = 1.0 - (-DAMPING_RATE * dt).exp();
        let (c, g) = (&mut self.current, &self.goal);
        c.yaw += (g.yaw - c.yaw) * k;
        c.pitch += (g.pitch - c.pitch) * k;
        // Zoom eases in log space, so zooming in and out feel the same.
        c.distance = (c.distance.ln() + (g.distance.ln() - c.distance.ln()) * k).exp();
        c.target += (g.target - c.target) * k;
        if !self.is_moving() {
            self.snap();
            return false;
        }
        true
    }

    fn is_moving(&self) -> bool {
        let (c, g) = (&self.current, &self.goal);
        let scale = g.distance.max(1e-3);
        (c.yaw - g.yaw).abs() > REST_ANGLE
            || (c.pitch - g.pitch).abs() > REST_ANGLE
            || ((c.distance - g.distance) / scale).abs() > REST_FRACTION
            || (c.target - g.target).length() / scale > REST_FRACTION
    }

    /// Jumps to the goal at once (offscreen renders, tests, "reduce motion").
    pub fn snap(&mut self) {
        self.current = self.goal;
    }

    /// Back to the home pose (double-click), with damping.
    pub fn reset(&mut self) {
        self.goal = self.home;
    }

    /// Orbits by a pointer drag of `dx`, `dy` pixels as if grabbing the scene: dragging right
    /// turns it to the right, dragging down tilts its top towards the viewer (the camera
    /// rises).
    pub fn orbit(&mut self, dx: f32, dy: f32) {
        let mut g = self.goal;
        g.yaw -= dx * ORBIT_PER_PIXEL;
        g.pitch += dy * ORBIT_PER_PIXEL;
        self.goal = self.clamped(g);
    }

    /// Pans by a drag of `dx`, `dy` pixels in a viewport of `viewport` pixels, so the
    /// point under the cursor (at the target's depth) follows the cursor.
    pub fn pan(&mut self, dx: f32, dy: f32, viewport: [f32; 2]) {
        let height = viewport[1];
        if height.is_nan() || height <= 0.0 {
            return;
        }
        let per_pixel = 2.0 * self.goal.distance * (self.fov_y / 2.0).tan() / height;
        let forward = -offset_direction(self.goal.yaw, self.goal.pitch);
        let right = forward.cross(Vec3::Y).normalize_or(Vec3::X);
        let up = right.cross(forward);
        let mut g = self.goal;
        g.target += (-right * dx + up * dy) * per_pixel;
        self.goal = self.clamped(g);
    }

    /// Zooms by `delta` wheel notches (positive zooms in; fractional deltas from touch pads
    /// work the same).
    pub fn zoom(&mut self, delta: f32) {
        if !delta.is_finite() {
            return;
        }
        let mut g = self.goal;
        g.distance *= (-delta * ZOOM_PER_STEP).exp();
        self.goal = self.clamped(g);
    }

    /// Zooms by a pinch gesture's scale factor (> 1 spreads the fingers, zooming in).
    pub fn pinch(&mut self, scale: f32) {
        if !(scale.is_finite() && scale > 0.0) {
            return;
        }
        let mut g = self.goal;
        g.distance /= scale;
        self.goal = self.clamped(g);
    }

    /// One keyboard step (arrows orbit, shift+arrows pan, +/- zoom, say).
    pub fn step(&mut self, step: CameraStep) {
        // Pan steps are a fraction of the view height, in pixels of a 1000-pixel view.
        let pan = KEY_PAN * 1000.0;
        let view = [1000.0, 1000.0];
        match step {
            CameraStep::OrbitLeft => self.orbit(-KEY_ORBIT / ORBIT_PER_PIXEL, 0.0),
            CameraStep::OrbitRight => self.orbit(KEY_ORBIT / ORBIT_PER_PIXEL, 0.0),
            CameraStep::OrbitUp => self.orbit(0.0, KEY_ORBIT / ORBIT_PER_PIXEL),
            CameraStep::OrbitDown => self.orbit(0.0, -KEY_ORBIT / ORBIT_PER_PIXEL),
            CameraStep::PanLeft => self.pan(pan, 0.0, view),
            CameraStep::PanRight => self.pan(-pan, 0.0, view),
            CameraStep::PanUp => self.pan(0.0, pan, view),
            CameraStep::PanDown => self.pan(0.0, -pan, view),
            CameraStep::ZoomIn => self.zoom(KEY_ZOOM),
            CameraStep::ZoomOut => self.zoom(-KEY_ZOOM),
        }
    }

    /// The pose drawn this frame.
    pub fn pose(&self) -> CameraPose {
        self.current
    }

    /// The pose the camera is easing towards.
    pub fn goal(&self) -> CameraPose {
        self.goal
    }

    /// The pose [`Camera::reset`] returns to.
    pub fn home(&self) -> CameraPose {
        self.home
    }

    /// Sets the goal directly (clamped), e.g. from `--yaw/--pitch/--distance`.
    pub fn set_goal(&mut self, pose: CameraPose) {
        self.goal = self.clamped(pose);
    }

    /// Vertical field of view in radians.
    pub fn fov_y(&self) -> f32 {
        self.fov_y
    }

    pub fn eye(&self) -> Vec3 {
        let p = self.current;
        p.target + offset_direction(p.yaw, p.pitch) * p.distance
    }

    pub fn view(&self) -> Mat4 {
        glam::camera::rh::view::look_at_mat4(self.eye(), self.current.target, Vec3::Y)
    }

    /// Perspective with wgpu's 0..1 depth; the clip planes hug the scene's bounding sphere
    /// so the depth buffer's precision goes where the cubes are.
    pub fn projection(&self, aspect: f32) -> Mat4 {
        let aspect = if aspect.is_finite() && aspect > 0.0 {
            aspect
        } else {
            1.0
        };
        let to_centre = (self.eye() - self.scene_centre).length();
        let r = self.scene_radius;
        let far = to_centre + r * 1.1;
        let near = (to_centre - r * 1.1).max(far * 1e-4).max(1e-3);
        // wgpu's clip space: y up, depth 0..1, as Direct3D's.
        glam::camera::rh::proj::directx::perspective(self.fov_y, aspect, near, far)
    }

    pub fn view_proj(&self, aspect: f32) -> Mat4 {
        self.projection(aspect) * self.view()
    }

    /// The ray through `cursor` (pixels, origin top-left) of a `viewport`-sized view.
    pub fn ray(&self, cursor: [f32; 2], viewport: [f32; 2]) -> Option<Ray> {
        let [w, h] = viewport;
        if !(w > 0.0 && h > 0.0) {
            return None;
        }
        let ndc = Vec2::new(cursor[0] / w * 2.0 - 1.0, 1.0 - cursor[1] / h * 2.0);
        let inverse = self.view_proj(w / h).inverse();
        let near = inverse.project_point3(ndc.extend(0.0));
        let far = inverse.project_point3(ndc.extend(1.0));
        let direction = (far - near).normalize_or_zero();
        (direction != Vec3::ZERO && near.is_finite()).then_some(Ray {
            origin: self.eye(),
            direction,
        })
    }
}

/// The eight corners of an axis-aligned box.
fn box_corners((lo, hi): (Vec3, Vec3)) -> [Vec3; 8] {
    std::array::from_fn(|i| {
        Vec3::new(
            if i & 1 == 0 { lo.x } else { hi.x },
            if i & 2 == 0 { lo.y } else { hi.y },
            if i & 4 == 0 { lo.z } else { hi.z },
        )
    })
}

/// Unit vector from the target to the eye.
fn offset_direction(yaw: f32, pitch: f32) -> Vec3 {
    let (yaw, pitch) = (yaw.to_radians(), pitch.to_radians());
    Vec3::new(
        pitch.cos() * yaw.sin(),
        pitch.sin(),
        pitch.cos() * yaw.cos(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera() -> Camera {
        Camera::fit(
            (Vec3::new(-100.0, 0.0, -30.0), Vec3::new(100.0, 6.0, 30.0)),
            16.0 / 9.0,
        )
    }

    #[test]
    fn damping_converges_to_the_goal_and_then_rests() {
        let mut c = camera();
        let start = c.pose();
        c.orbit(200.0, -50.0);
        c.zoom(3.0);
        let goal = c.goal();
        assert_ne!(start, goal);
        let mut moving = true;
        let mut frames = 0;
        while moving && frames < 600 {
            moving = c.update(1.0 / 60.0);
            frames += 1;
        }
        assert!(!moving, "still moving after 10 s");
        assert_eq!(c.pose(), goal);
        // A quarter of a second gets most of the way; frame rate does not change the path.
        let mut fast = camera();
        let mut slow = camera();
        fast.orbit(100.0, 0.0);
        slow.orbit(100.0, 0.0);
        for _ in 0..30 {
            fast.update(1.0 / 120.0);
        }
        for _ in 0..15 {
            slow.update(1.0 / 60.0);
        }
        let (f, s) = (fast.pose().yaw, slow.pose().yaw);
        assert!((f - s).abs() < 1e-3, "{f} vs {s}");
        let travelled = (f - start.yaw) / (fast.goal().yaw - start.yaw);
        assert!(travelled > 0.9, "{travelled}");
    }

    #[test]
    fn pitch_and_distance_are_clamped() {
        let mut c = camera();
        c.orbit(0.0, 10_000.0);
        assert_eq!(c.goal().pitch, MAX_PITCH);
        c.orbit(0.0, -100_000.0);
        assert_eq!(c.goal().pitch, MIN_PITCH);
        let (min_d, max_d) = c.distance_limits();
        c.zoom(1000.0);
        assert_eq!(c.goal().distance, min_d);
        c.pinch(1e-9);
        assert_eq!(c.goal().distance, max_d);
        c.zoom(f32::NAN);
        c.pinch(-1.0);
        c.pan(f32::NAN, 0.0, [100.0, 100.0]);
        assert!(c.goal().target.is_finite() && c.goal().distance == max_d);
    }

    #[test]
    fn reset_returns_home() {
        let mut c = camera();
        let home = c.pose();
        c.orbit(50.0, 20.0);
        c.pan(30.0, 10.0, [800.0, 600.0]);
        c.zoom(-2.0);
        c.reset();
        c.snap();
        assert_eq!(c.pose(), home);
    }

    #[test]
    fn fit_keeps_every_corner_on_screen() {
        let bounds = (Vec3::new(-100.0, 0.0, -30.0), Vec3::new(100.0, 6.0, 30.0));
        let c = Camera::fit(bounds, 16.0 / 9.0);
        let vp = c.view_proj(16.0 / 9.0);
        for i in 0..8 {
            let p = Vec3::new(
                if i & 1 == 0 { -100.0 } else { 100.0 },
                if i & 2 == 0 { 0.0 } else { 6.0 },
                if i & 4 == 0 { -30.0 } else { 30.0 },
            );
            let ndc = vp.project_point3(p);
            assert!(ndc.x.abs() <= 1.0 && ndc.y.abs() <= 1.0, "{p} -> {ndc}");
            assert!((0.0..=1.0).contains(&ndc.z), "{p} depth {}", ndc.z);
        }
    }

    #[test]
    fn pan_moves_the_target_with_the_cursor() {
        let mut c = Camera::new(CameraPose {
            target: Vec3::ZERO,
            yaw: 0.0,
            pitch: 0.0,
            distance: 10.0,
        });
        c.pan(100.0, 0.0, [1000.0, 1000.0]);
        // Dragging right moves the scene right, i.e. the target left.
        assert!(c.goal().target.x < 0.0);
        assert!(c.goal().target.y.abs() < 1e-6);
    }

    #[test]
    fn the_centre_ray_points_at_the_target() {
        let c = camera();
        let ray = c.ray([400.0, 300.0], [800.0, 600.0]).expect("ray");
        let to_target = (c.pose().target - ray.origin).normalize();
        assert!(ray.direction.dot(to_target) > 0.9999);
    }
}
