//! The machine alone: messages in, actions out. No socket, no file; the
//! test plays the driver where the machine waits for one (`written`,
//! `finished`...). The same behaviour over real sockets and files is in
//! `chatcore/tests/transfer.rs`.

use std::path::PathBuf;

use super::*;
use crate::client::ClientError;
use crate::client::transfer::TransferError;
use crate::protocol::ErrorMsg;
use crate::protocol::transfer::{FileKind, FileProgress};

const MB: u32 = 1 << 20;

fn offer(transfer: u64, size: u64) -> ServerMessage {
    ServerMessage::FileOffer(FileOffered {
        room: None,
        to: None,
        transfer,
        from: "alice".into(),
        session: 1,
        name: format!("f{transfer}.bin"),
        size,
        sha256: vec![0; 32],
        kind: FileKind::File,
        ts: 0,
    })
}

fn error(code: ErrorCode, reference: Option<u64>, transfer: Option<u64>) -> ServerMessage {
    ServerMessage::Error(ErrorMsg {
        room: None,
        code,
        message: "refused".into(),
        reference,
        transfer,
    })
}

fn data(transfer: u64, offset: u64, len: usize) -> ServerMessage {
    ServerMessage::FileData(FileData {
        transfer,
        offset,
        data: vec![1; len],
    })
}

fn cancelled(transfer: u64, reason: &str) -> ServerMessage {
    ServerMessage::FileCancelled(FileCancelled {
        transfer,
        reason: reason.into(),
    })
}

fn done(transfer: u64) -> ServerMessage {
    ServerMessage::FileDone(TransferId { transfer })
}

fn part(transfer: u64) -> PathBuf {
    PathBuf::from(format!("in/f{transfer}.bin.part"))
}

fn accept(transfer: u64, offset: u64) -> Action {
    Action::Send(ClientMessage::FileAccept(FileAccept { transfer, offset }))
}

/// A machine that was offered `transfer` of `size` bytes and downloads it
/// (its `file_accept` sent).
fn downloading(transfer: u64, size: u64) -> Machine {
    let mut m = Machine::new(MB);
    m.on_message(offer(transfer, size));
    let sent = m.start_download(transfer, part(transfer), size, 0);
    assert_eq!(
        sent.expect("start"),
        Some(FileAccept {
            transfer,
            offset: 0
        })
    );
    m
}

/// A machine uploading a `size`-byte file as transfer `transfer`; returns
/// it and the offer's `ref`.
fn uploading(transfer: u64, size: u64) -> (Machine, u64) {
    let mut m = Machine::new(MB);
    let reference = m.offer("up.bin".into(), size).expect("offer");
    m.on_message(ServerMessage::FileUpload(FileUpload {
        transfer,
        max_chunk: MAX_CHUNK,
        reference: Some(reference),
    }));
    (m, reference)
}

/// The `Failed` report among `actions`: its code, reason and part.
fn failure(actions: &[Action]) -> (Option<ErrorCode>, String, Option<PathBuf>) {
    actions
        .iter()
        .find_map(|a| match a {
            Action::Report(TransferEvent::Failed {
                code, reason, part, ..
            }) => Some((*code, reason.clone(), part.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no failure in {actions:?}"))
}

#[test]
fn a_message_that_is_not_about_files_is_passed_on_unchanged() {
    let mut m = Machine::new(MB);
    let pong = ServerMessage::Pong(crate::protocol::Seq { seq: 3 });
    assert_eq!(m.on_message(pong.clone()), vec![Action::PassOn(pong)]);
}

#[test]
fn an_offer_is_remembered_and_passed_on() {
    let mut m = Machine::new(MB);
    assert_eq!(
        m.on_message(offer(4, 10)),
        vec![Action::PassOn(offer(4, 10))]
    );
    assert_eq!(m.offers().len(), 1);
    assert_eq!(m.offer_of(4).map(|o| o.size), Some(10));
}

#[test]
fn an_accepted_offer_starts_the_upload_with_a_chunk_that_fits_the_frame_limit() {
    let mut m = Machine::new(MB);
    let reference = m.offer("a.bin".into(), 5000).expect("offer");
    assert!(is_offer_ref(reference));
    let actions = m.on_message(ServerMessage::FileUpload(FileUpload {
        transfer: 5,
        max_chunk: MAX_CHUNK,
        reference: Some(reference),
    }));
    assert_eq!(
        actions,
        vec![
            Action::Report(TransferEvent::UploadStarted {
                reference,
                transfer: 5,
                name: "a.bin".into(),
                size: 5000,
            }),
            Action::StartUpload {
                reference,
                transfer: 5,
                size: 5000,
                chunk: MAX_CHUNK as usize,
            },
        ]
    );
    // A server with small frames: the chunk shrinks so its frame fits.
    let mut small = Machine::new(1000);
    let reference = small.offer("a.bin".into(), 5000).expect("offer");
    let actions = small.on_message(ServerMessage::FileUpload(FileUpload {
        transfer: 1,
        max_chunk: MAX_CHUNK,
        reference: Some(reference),
    }));
    assert!(actions.contains(&Action::StartUpload {
        reference,
        transfer: 1,
        size: 5000,
        chunk: 1000 - CHUNK_OVERHEAD as usize,
    }));
}

#[test]
fn an_empty_file_needs_no_upload_thread() {
    let (m, reference) = uploading(5, 0);
    assert!(m.uploads.contains_key(&5));
    let mut m2 = Machine::new(MB);
    let r = m2.offer("e".into(), 0).expect("offer");
    let actions = m2.on_message(ServerMessage::FileUpload(FileUpload {
        transfer: 5,
        max_chunk: MAX_CHUNK,
        reference: Some(r),
    }));
    assert_eq!(actions.last(), Some(&Action::DropOffer(r)));
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StartUpload { .. }))
    );
    assert_eq!(r, reference);
}

#[test]
fn progress_and_ready_of_our_upload_become_events_and_others_pass_on() {
    let (mut m, _) = uploading(5, 3000);
    let p = FileProgress {
        transfer: 5,
        done: 1000,
        total: 3000,
    };
    assert_eq!(
        m.on_message(ServerMessage::FileProgress(p)),
        vec![Action::Report(TransferEvent::UploadProgress {
            transfer: 5,
            done: 1000,
            total: 3000
        })]
    );
    let other = ServerMessage::FileProgress(FileProgress { transfer: 6, ..p });
    assert_eq!(m.on_message(other.clone()), vec![Action::PassOn(other)]);
    assert_eq!(
        m.on_message(ServerMessage::FileReady(TransferId { transfer: 5 })),
        vec![
            Action::StopUpload(5),
            Action::Report(TransferEvent::UploadReady { transfer: 5 })
        ]
    );
    let again = ServerMessage::FileReady(TransferId { transfer: 5 });
    assert_eq!(m.on_message(again.clone()), vec![Action::PassOn(again)]);
}

#[test]
fn an_upload_thread_that_gives_up_cancels_once_and_the_answer_is_not_reported() {
    let (mut m, _) = uploading(5, 3000);
    let actions = m.upload_failed(5, Failure::Shrunk);
    assert_eq!(actions[0], Action::StopUpload(5));
    assert_eq!(
        actions[1],
        Action::Send(ClientMessage::FileCancel(TransferId { transfer: 5 }))
    );
    let (code, reason, part) = failure(&actions);
    assert_eq!((code, part), (None, None));
    assert!(reason.contains("shorter"), "{reason}");
    assert!(m.upload_failed(5, Failure::Shrunk).is_empty());
    assert!(m.on_message(cancelled(5, "cancelled")).is_empty());
}

#[test]
fn bytes_are_written_and_progress_reported_every_step_and_at_the_end() {
    let size = PROGRESS_STEP + 10;
    let mut m = downloading(1, size);
    let step = PROGRESS_STEP as usize;
    assert_eq!(m.on_message(data(1, 0, step / 2)).len(), 1);
    assert!(m.written(1, step / 2).is_empty(), "half a step: no report");
    m.on_message(data(1, PROGRESS_STEP / 2, step / 2));
    assert_eq!(
        m.written(1, step / 2),
        vec![Action::Report(TransferEvent::DownloadProgress {
            transfer: 1,
            done: PROGRESS_STEP,
            total: size
        })]
    );
    m.on_message(data(1, PROGRESS_STEP, 10));
    assert_eq!(
        m.written(1, 10),
        vec![Action::Report(TransferEvent::DownloadProgress {
            transfer: 1,
            done: size,
            total: size
        })]
    );
    assert_eq!(m.on_message(done(1)), vec![Action::Finish(1)]);
    let path = PathBuf::from("in/f1.bin");
    assert_eq!(
        m.finished(1, Ok(path.clone())),
        vec![Action::Report(TransferEvent::Saved { transfer: 1, path })]
    );
    assert_eq!(m.partial_file(1), None);
}

#[test]
fn a_download_that_fails_its_final_check_reports_what_was_kept() {
    let mut m = downloading(1, 4);
    m.on_message(data(1, 0, 4));
    m.written(1, 4);
    m.on_message(done(1));
    let mismatch = Failure::HashMismatch {
        got: "aa".into(),
        offered: "bb".into(),
    };
    let actions = m.finished(1, Err((mismatch, None)));
    assert!(failure(&actions).1.starts_with("SHA-256 mismatch"));
    assert_eq!(m.partial_file(1), None);
}

#[test]
fn a_download_ended_short_keeps_its_part() {
    let mut m = downloading(1, 100);
    m.on_message(data(1, 0, 10));
    m.written(1, 10);
    let actions = m.on_message(done(1));
    assert_eq!(actions[0], Action::KeepPart(1));
    let (_, reason, kept) = failure(&actions);
    assert_eq!(reason, "the server ended the download at 10 of 100 bytes");
    assert_eq!(kept, Some(part(1)));
    assert_eq!(m.partial_file(1), Some(part(1)));
}

#[test]
fn data_out_of_place_or_past_the_end_deletes_the_download_and_cancels_it() {
    for (offset, len, want) in [
        (5, 10, "where 0 was expected"),
        (0, 101, "more than the 100"),
    ] {
        let mut m = downloading(1, 100);
        let actions = m.on_message(data(1, offset, len));
        assert_eq!(actions[0], Action::DiscardPart(1));
        assert_eq!(
            actions[1],
            Action::Send(ClientMessage::FileCancel(TransferId { transfer: 1 }))
        );
        let (code, reason, kept) = failure(&actions);
        assert_eq!((code, kept), (None, None));
        assert!(reason.contains(want), "{reason}");
        // The server's answer to that cancel is ours and not reported.
        assert!(m.on_message(cancelled(1, "cancelled")).is_empty());
    }
}

#[test]
fn a_failed_write_keeps_the_good_bytes_for_resuming() {
    let mut m = downloading(1, 100);
    m.on_message(data(1, 0, 10));
    m.written(1, 10);
    m.on_message(data(1, 10, 10));
    let actions = m.write_failed(1, std::io::Error::other("disk full"));
    assert_eq!(actions[0], Action::KeepPart(1));
    let (_, reason, kept) = failure(&actions);
    assert!(
        reason.starts_with("writing ") && reason.ends_with("disk full"),
        "{reason}"
    );
    assert_eq!(kept, Some(part(1)));
    assert_eq!(m.partial_file(1), Some(part(1)));
}

#[test]
fn data_for_a_download_we_do_not_run_is_dropped_and_cancelled_once() {
    let mut m = Machine::new(MB);
    let cancel = Action::Send(ClientMessage::FileCancel(TransferId { transfer: 7 }));
    assert_eq!(m.on_message(data(7, 0, 10)), vec![cancel]);
    assert!(m.on_message(data(7, 10, 10)).is_empty());
    assert!(m.on_message(cancelled(7, "cancelled")).is_empty());
}

#[test]
fn our_cancel_of_a_download_is_reported_with_its_part_once_the_server_confirms() {
    let mut m = downloading(1, 100);
    m.on_message(data(1, 0, 10));
    m.written(1, 10);
    assert_eq!(
        m.cancel(1).expect("cancel"),
        vec![Action::Send(ClientMessage::FileCancel(TransferId {
            transfer: 1
        }))]
    );
    assert!(m.cancel(1).expect("twice").is_empty(), "sent once");
    assert!(matches!(
        m.check_acceptable(1),
        Err(ClientError::Transfer(TransferError::StillCancelling(1)))
    ));
    // Data already on its way is still written.
    assert_eq!(m.on_message(data(1, 10, 5)).len(), 1);
    m.written(1, 5);
    assert_eq!(
        m.on_message(cancelled(1, "cancelled")),
        vec![
            Action::KeepPart(1),
            Action::Report(TransferEvent::Cancelled {
                transfer: 1,
                part: Some(part(1))
            })
        ]
    );
    assert_eq!(m.partial_file(1), Some(part(1)));
}

#[test]
fn a_download_cancelled_before_its_turn_is_reported_without_asking_for_it() {
    let mut m = downloading(1, 100);
    m.on_message(offer(2, 50));
    m.start_download(2, part(2), 50, 0).expect("start");
    assert!(m.cancel(2).expect("cancel").is_empty(), "nothing to send");
    let actions = m.on_message(done(1));
    assert!(!actions.contains(&accept(2, 0)), "{actions:?}");
    assert!(actions.contains(&Action::Report(TransferEvent::Cancelled {
        transfer: 2,
        part: Some(part(2))
    })));
}

#[test]
fn a_withdrawn_offer_ends_our_download_and_deletes_its_part() {
    let mut m = downloading(1, 100);
    m.on_message(data(1, 0, 10));
    m.written(1, 10);
    let actions = m.on_message(cancelled(1, "cancelled"));
    assert_eq!(actions[0], Action::DiscardPart(1));
    assert_eq!(failure(&actions).1, "the sender withdrew the file");
    assert_eq!(
        actions.last(),
        Some(&Action::PassOn(cancelled(1, "cancelled")))
    );
    assert!(m.offer_of(1).is_none());
    // Frames of it already queued are ignored, and cancelled once.
    assert_eq!(m.on_message(data(1, 10, 10)).len(), 1);
}

#[test]
fn a_download_stopped_by_the_server_keeps_its_part() {
    let mut m = downloading(1, 100);
    let actions = m.on_message(cancelled(1, "error"));
    assert_eq!(actions[0], Action::KeepPart(1));
    assert_eq!(
        failure(&actions).1,
        "the server stopped the download (error)"
    );
}

#[test]
fn an_expired_offer_lets_our_download_go_on() {
    let mut m = downloading(1, 100);
    assert_eq!(
        m.on_message(cancelled(1, "expired")),
        vec![Action::PassOn(cancelled(1, "expired"))]
    );
    assert!(m.offer_of(1).is_none());
    assert_eq!(m.on_message(data(1, 0, 10)).len(), 1, "still written");
}

#[test]
fn our_withdrawal_of_an_own_offer_is_reported_as_cancelled() {
    let (mut m, _) = uploading(5, 10);
    m.on_message(ServerMessage::FileReady(TransferId { transfer: 5 }));
    assert_eq!(
        m.cancel(5).expect("withdraw"),
        vec![Action::Send(ClientMessage::FileCancel(TransferId {
            transfer: 5
        }))]
    );
    assert_eq!(
        m.on_message(cancelled(5, "cancelled")),
        vec![Action::Report(TransferEvent::Cancelled {
            transfer: 5,
            part: None
        })]
    );
    assert!(matches!(m.cancel(5), Err(ClientError::UnknownTransfer(5))));
}

#[test]
fn cancelling_an_upload_stops_its_thread_at_once() {
    let (mut m, _) = uploading(5, 10_000);
    assert_eq!(
        m.cancel(5).expect("cancel"),
        vec![
            Action::StopUpload(5),
            Action::Send(ClientMessage::FileCancel(TransferId { transfer: 5 }))
        ]
    );
    assert_eq!(
        m.on_message(cancelled(5, "cancelled")),
        vec![Action::Report(TransferEvent::Cancelled {
            transfer: 5,
            part: None
        })]
    );
}

#[test]
fn closing_fails_every_transfer_keeps_download_parts_and_refuses_new_calls() {
    let (mut m, _) = uploading(5, 10_000);
    let pending = m.offer("later.bin".into(), 3).expect("offer");
    m.on_message(offer(1, 100));
    m.start_download(1, part(1), 100, 0).expect("start");
    let actions = m.close();
    assert!(actions.contains(&Action::StopUpload(5)));
    assert!(actions.contains(&Action::DropOffer(pending)));
    assert!(actions.contains(&Action::KeepPart(1)));
    let failures = actions
        .iter()
        .filter(|a| {
            matches!(a, Action::Report(TransferEvent::Failed { reason, .. })
                if reason == "the connection closed")
        })
        .count();
    assert_eq!(failures, 2, "{actions:?}");
    assert_eq!(m.partial_file(1), Some(part(1)));
    assert!(matches!(m.offer("x".into(), 1), Err(ClientError::Closed)));
    assert!(matches!(m.check_acceptable(1), Err(ClientError::Closed)));
}

#[test]
fn calls_refuse_what_cannot_be_done_now_with_a_typed_error() {
    let mut m = downloading(1, 100);
    assert!(matches!(
        m.check_acceptable(1),
        Err(ClientError::Transfer(TransferError::AlreadyDownloading(1)))
    ));
    assert!(matches!(
        m.decline(1),
        Err(ClientError::Transfer(TransferError::Downloading(1)))
    ));
    assert!(matches!(
        m.check_acceptable(2),
        Err(ClientError::UnknownTransfer(2))
    ));
    assert!(matches!(m.decline(2), Err(ClientError::UnknownTransfer(2))));
    assert!(matches!(m.cancel(2), Err(ClientError::UnknownTransfer(2))));
    let mut bad = FileOffered {
        room: None,
        to: None,
        transfer: 3,
        from: "x".into(),
        session: 1,
        name: "x".into(),
        size: 1,
        sha256: vec![0; 20],
        kind: FileKind::File,
        ts: 0,
    };
    m.on_message(ServerMessage::FileOffer(bad.clone()));
    assert!(matches!(
        m.known_offer(3),
        Err(ClientError::Transfer(TransferError::NotSha256 {
            transfer: 3,
            len: 20
        }))
    ));
    bad.transfer = 4;
    bad.sha256 = vec![0; 32];
    m.on_message(ServerMessage::FileOffer(bad));
    assert!(m.known_offer(4).is_ok());
    m.decline(4).expect("decline");
    assert!(m.offer_of(4).is_none());
}

#[test]
fn a_file_accept_that_could_not_be_sent_leaves_the_part_to_resume_from() {
    let mut m = downloading(1, 100);
    m.accept_not_sent(1);
    assert_eq!(m.partial_file(1), Some(part(1)));
    assert!(m.check_acceptable(1).is_ok());
}

mod errors;
