//! Records a WAV file as a voice message (Ogg Opus), as the GUI's record
//! button does from the microphone, and reads it back.
//!
//! ```text
//! cargo run -p chatvoice --example record_message -- IN.wav OUT.opus
//! opusinfo OUT.opus   # (opus-tools) checks the Ogg Opus structure
//! ```

use std::error::Error;
use std::path::PathBuf;
use std::time::Duration;

use chatvoice::audio::Pacing;
use chatvoice::audio::wav::WavInput;
use chatvoice::message::{self, MAX_MESSAGE_SECS, Recorder};

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(input), Some(output)) = (args.next(), args.next()) else {
        return Err("usage: record_message IN.wav OUT.opus".into());
    };
    let (input, output) = (PathBuf::from(input), PathBuf::from(output));
    let rec = Recorder::start(
        Box::new(WavInput::open(&input, Pacing::AsFastAsPossible)?),
        &output,
        Duration::from_secs(u64::from(MAX_MESSAGE_SECS)),
    )?;
    while !rec.is_finished() {
        std::thread::sleep(Duration::from_millis(10));
    }
    let r = rec.stop()?;
    let pcm = message::read(&output)?;
    println!(
        "{}: {:?}, {} samples read back, {} bytes{}",
        output.display(),
        r.duration(),
        pcm.len(),
        std::fs::metadata(&output)?.len(),
        if r.reached_limit {
            " (stopped at the maximum length)"
        } else {
            ""
        }
    );
    Ok(())
}
