//! File transfers in the transcript: one line per thing that happened,
//! plus progress (see [`crate::progress`]).
//!
//! | event | line |
//! |---|---|
//! | our offer taken | `* sending report.pdf (1.2 MB) as transfer 7` |
//! | our offer ready | `* report.pdf is on offer (transfer 7)` |
//! | our offer refused | `! cannot send report.pdf: file_too_large: ...` |
//! | download saved | `* saved report.pdf to downloads/report.pdf (sha256 ok)` |
//! | cancelled | `* 7: report.pdf cancelled; downloads/report.pdf.part kept, /accept 7 resumes` |
//! | failed | `! 7: report.pdf failed: hash_mismatch: ...` |
//! | progress (not a terminal) | `* 7: 12.0 of 64.0 MiB` |

use std::collections::HashMap;
use std::path::Path;

use chatcore::client::TransferEvent;

use crate::progress::{Progress, human_size};
use crate::render::Style;
use crate::text::one_line;

/// What the terminal knows about this client's transfers.
#[derive(Debug)]
pub struct FileView {
    style: Style,
    /// Printable names of our uploads and downloads, by transfer.
    names: HashMap<u64, String>,
    progress: Progress,
}

impl FileView {
    /// A view printing progress with `progress`.
    pub fn new(style: Style, progress: Progress) -> Self {
        Self {
            style,
            names: HashMap::new(),
            progress,
        }
    }

    /// Prints a transcript line (moving progress bars out of the way).
    pub fn print(&self, line: &str) {
        self.progress.print(line);
    }

    /// A download of `transfer` (`name`, `total` bytes) into `part` was
    /// asked for; returns the line saying so.
    pub fn downloading(&mut self, transfer: u64, name: &str, total: u64, part: &Path) -> String {
        let name = one_line(name).into_owned();
        self.progress
            .start(transfer, &format!("\u{2193} {name}"), total);
        let line = format!(
            "* downloading {name} ({}) to {}",
            human_size(total),
            one_line(&part.display().to_string())
        );
        self.names.insert(transfer, name);
        self.style.notice(&line)
    }

    fn name(&self, transfer: u64) -> String {
        self.names
            .get(&transfer)
            .cloned()
            .unwrap_or_else(|| format!("transfer {transfer}"))
    }

    /// Takes in a transfer event; returns the lines to print.
    pub fn on_event(&mut self, event: &TransferEvent) -> Vec<String> {
        let s = self.style;
        match event {
            TransferEvent::UploadStarted {
                transfer,
                name,
                size,
                ..
            } => {
                let name = one_line(name).into_owned();
                self.progress
                    .start(*transfer, &format!("\u{2191} {name}"), *size);
                let line = format!(
                    "* sending {name} ({}) as transfer {transfer}",
                    human_size(*size)
                );
                self.names.insert(*transfer, name);
                vec![s.notice(&line)]
            }
            TransferEvent::UploadProgress {
                transfer,
                done,
                total,
            }
            | TransferEvent::DownloadProgress {
                transfer,
                done,
                total,
            } => self
                .progress
                .update(*transfer, *done, *total)
                .map(|l| s.notice(&l))
                .into_iter()
                .collect(),
            TransferEvent::UploadReady { transfer } => {
                self.progress.finish(*transfer);
                vec![s.notice(&format!(
                    "* {} is on offer (transfer {transfer})",
                    self.name(*transfer)
                ))]
            }
            TransferEvent::OfferRefused {
                name,
                code,
                message,
                ..
            } => vec![s.error(&format!(
                "! cannot send {}: {code}: {}",
                one_line(name),
                one_line(message)
            ))],
            TransferEvent::Saved { transfer, path } => {
                self.progress.finish(*transfer);
                let name = self.names.remove(transfer).unwrap_or_default();
                vec![s.notice(&format!(
                    "* saved {name} to {} (sha256 ok)",
                    one_line(&path.display().to_string())
                ))]
            }
            TransferEvent::Cancelled { transfer, part } => {
                self.progress.finish(*transfer);
                let name = self.name(*transfer);
                vec![s.notice(&match part {
                    Some(part) => format!(
                        "* {transfer}: {name} cancelled; {} kept, /accept {transfer} resumes",
                        one_line(&part.display().to_string())
                    ),
                    None => format!("* {transfer}: {name} cancelled"),
                })]
            }
            TransferEvent::Failed {
                transfer,
                code,
                reason,
                part,
            } => {
                self.progress.finish(*transfer);
                let name = self.name(*transfer);
                let code = code.map(|c| format!("{c}: ")).unwrap_or_default();
                let mut line = format!("! {transfer}: {name} failed: {code}{}", one_line(reason));
                if let Some(part) = part {
                    line.push_str(&format!(
                        "; {} kept, /accept {transfer} resumes",
                        one_line(&part.display().to_string())
                    ));
                }
                vec![s.error(&line)]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chatcore::protocol::ErrorCode;

    use super::*;

    #[test]
    fn transfer_lines() {
        let mut view = FileView::new(Style::plain(), Progress::lines());
        let mib = 1024 * 1024;
        let started = TransferEvent::UploadStarted {
            reference: 1,
            transfer: 7,
            name: "report.pdf".into(),
            size: 64 * mib,
        };
        assert_eq!(
            view.on_event(&started),
            vec!["* sending report.pdf (67.1 MB) as transfer 7"]
        );
        let progress = |done| TransferEvent::UploadProgress {
            transfer: 7,
            done,
            total: 64 * mib,
        };
        assert_eq!(view.on_event(&progress(mib)), vec!["* 7: 1.0 of 64.0 MiB"]);
        assert!(view.on_event(&progress(2 * mib)).is_empty());
        assert_eq!(
            view.on_event(&progress(64 * mib)),
            vec!["* 7: 64.0 of 64.0 MiB"]
        );
        assert_eq!(
            view.on_event(&TransferEvent::UploadReady { transfer: 7 }),
            vec!["* report.pdf is on offer (transfer 7)"]
        );
        let refused = TransferEvent::OfferRefused {
            reference: 2,
            name: "big.iso".into(),
            code: ErrorCode::FileTooLarge,
            message: "too big".into(),
        };
        assert_eq!(
            view.on_event(&refused),
            vec!["! cannot send big.iso: file_too_large: too big"]
        );

        let part = PathBuf::from("downloads/a\nb.part");
        assert_eq!(
            view.downloading(9, "a\nb", 10, &part),
            "* downloading a\\nb (10 B) to downloads/a\\nb.part"
        );
        assert_eq!(
            view.on_event(&TransferEvent::Cancelled {
                transfer: 9,
                part: Some(part.clone())
            }),
            vec!["* 9: a\\nb cancelled; downloads/a\\nb.part kept, /accept 9 resumes"]
        );
        assert_eq!(
            view.on_event(&TransferEvent::Failed {
                transfer: 9,
                code: Some(ErrorCode::UnknownTransfer),
                reason: "gone".into(),
                part: None,
            }),
            vec!["! 9: a\\nb failed: unknown_transfer: gone"]
        );
        assert_eq!(
            view.on_event(&TransferEvent::Saved {
                transfer: 9,
                path: PathBuf::from("downloads/a_b"),
            }),
            vec!["* saved a\\nb to downloads/a_b (sha256 ok)"]
        );
    }
}
