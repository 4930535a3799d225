//! Kiosk mode's building blocks, each a small piece the window wires in: the config
//! ([`KioskConfig`]), the idle → reset → attract cycle ([`IdleTimer`]), attract mode's
//! progressively drawn digits ([`AttractPlayer`]), the admin exit ([`AdminGate`] and the
//! PIN pad in `ui::pin_pad`), and one kiosk per store ([`InstanceLock`]).
//!
//! None of them touches the window, the GPU or the clock: they are fed instants and
//! input, so each is tested on its own with made-up times.

pub mod admin;
pub mod attract;
pub mod config;
pub mod idle;
pub mod instance;

pub use admin::{AdminGate, AdminOutcome, AdminState, Corner, KeyChord};
pub use attract::{AttractDigits, AttractError, AttractFrame, AttractPlayer, DigitSource};
pub use config::{ConfigError, KioskConfig, MonitorChoice, MonitorError};
pub use idle::{IdleEvent, IdlePhase, IdleTimer, person_in, person_input};
pub use instance::{InstanceError, InstanceLock};
