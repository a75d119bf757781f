//! Work that must not run on the UI thread (a modal file dialog, starting
//! a file manager), each on a short-lived thread of its own, handed back to
//! iced as a future.

use std::path::PathBuf;
use std::process::Command;
use std::thread;

use iced::futures::channel::oneshot;

/// Runs `f` on a new thread; the future yields its result (`None` if the
/// thread could not start or panicked).
pub async fn off_thread<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let spawned = thread::Builder::new().name(name.to_owned()).spawn(move || {
        let _ = tx.send(f());
    });
    if spawned.is_err() {
        return None;
    }
    rx.await.ok()
}

/// Shows the native "open file" dialog; `None` when cancelled or when the
/// desktop has no dialog service (the room then offers a path field).
pub async fn pick_file() -> Option<Option<PathBuf>> {
    off_thread("file-dialog", || {
        rfd::FileDialog::new()
            .set_title("Send a file to the room")
            .pick_file()
    })
    .await
}

/// Opens `dir` in the desktop's file manager; `Err` says why it failed.
pub async fn open_folder(dir: PathBuf) -> Result<(), String> {
    let shown = dir.display().to_string();
    off_thread("open-folder", move || {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        };
        match Command::new(opener).arg(&dir).status() {
            Ok(s) if s.success() => Ok(()),
            Ok(s) => Err(format!("Cannot open {shown}: {opener} exited with {s}")),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(format!("Cannot open {shown}: {opener} is not installed."))
            }
            Err(e) => Err(format!("Cannot open {shown}: {opener}: {e}")),
        }
    })
    .await
    .unwrap_or_else(|| Err("Cannot open the folder: no thread".to_owned()))
}
