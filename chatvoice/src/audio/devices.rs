//! Which audio devices work, and why not: the GUI disables the call and
//! record buttons with the reason instead of failing later.

use cpal::traits::{DeviceTrait, HostTrait};

use super::cpal_backend::{CpalInput, CpalOutput, default_config, pick_device};
use super::{AudioInput, AudioOutput};
use crate::error::{AudioError, Direction};

/// Whether one direction can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// A device opens; its name.
    Available {
        /// The device's name as the system shows it.
        name: String,
    },
    /// Nothing usable; a sentence for the user.
    Unavailable {
        /// Why.
        reason: String,
    },
}

impl Availability {
    /// Whether a device is available.
    pub fn is_available(&self) -> bool {
        matches!(self, Self::Available { .. })
    }
}

/// The result of [`probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProbe {
    /// The microphone.
    pub capture: Availability,
    /// The speakers.
    pub playback: Availability,
}

fn check(direction: Direction) -> Availability {
    let result = (|| -> Result<String, AudioError> {
        let device = pick_device(direction, None)?;
        default_config(&device, direction)?;
        // Open (and at once close) a stream: on a machine without a sound
        // server the default device is listed but does not open.
        match direction {
            Direction::Capture => drop(Box::new(CpalInput::default()).start()?),
            Direction::Playback => drop(Box::new(CpalOutput::default()).start()?),
        }
        Ok(device
            .description()
            .map(|d| d.name().to_owned())
            .unwrap_or_else(|_| "default".to_owned()))
    })();
    match result {
        Ok(name) => Availability::Available { name },
        Err(e) => Availability::Unavailable {
            reason: e.to_string(),
        },
    }
}

/// Checks the default capture and playback devices by opening a stream on
/// each and closing it again. Takes up to a few hundred milliseconds; call it
/// when a settings or call screen opens (off the UI thread), not per frame.
pub fn probe() -> DeviceProbe {
    DeviceProbe {
        capture: check(Direction::Capture),
        playback: check(Direction::Playback),
    }
}

/// Names of the devices that can capture and that can play, for a picker.
pub fn device_names() -> (Vec<String>, Vec<String>) {
    let host = cpal::default_host();
    let mut capture = Vec::new();
    let mut playback = Vec::new();
    if let Ok(devices) = host.devices() {
        for d in devices {
            let Ok(desc) = d.description() else { continue };
            if d.supports_input() {
                capture.push(desc.name().to_owned());
            }
            if d.supports_output() {
                playback.push(desc.name().to_owned());
            }
        }
    }
    (capture, playback)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_answers_with_a_name_or_a_reason_and_never_panics() {
        let p = probe();
        for a in [&p.capture, &p.playback] {
            match a {
                Availability::Available { name } => assert!(!name.is_empty()),
                Availability::Unavailable { reason } => assert!(!reason.is_empty()),
            }
        }
        let _ = device_names();
    }
}
