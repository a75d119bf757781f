//! Errors in, actions out: which transfer an `error` is about (its `ref`,
//! its `transfer`, or the `file_accept` in flight for `rate_limited`).

use super::*;

#[test]
fn a_refused_offer_is_reported_with_its_name_and_its_file_closed() {
    let mut m = Machine::new(MB);
    let reference = m.offer("big.bin".into(), 9).expect("offer");
    let actions = m.on_message(error(ErrorCode::FileTooLarge, Some(reference), None));
    assert_eq!(
        actions,
        vec![
            Action::DropOffer(reference),
            Action::Report(TransferEvent::OfferRefused {
                reference,
                name: "big.bin".into(),
                code: ErrorCode::FileTooLarge,
                message: "refused".into(),
            }),
        ]
    );
}

#[test]
fn an_error_naming_our_upload_fails_it_and_the_file_cancelled_after_it_is_not_reported() {
    let (mut m, _) = uploading(5, 3000);
    let actions = m.on_message(error(ErrorCode::HashMismatch, None, Some(5)));
    assert_eq!(actions[0], Action::StopUpload(5));
    assert_eq!(failure(&actions).0, Some(ErrorCode::HashMismatch));
    assert_eq!(actions.len(), 2);
    // The server's `file_cancelled` `error` that follows is swallowed.
    assert_eq!(
        m.on_message(cancelled(5, "error")),
        vec![Action::StopUpload(5)]
    );
    // The thread noticing something too late adds nothing.
    assert!(m.upload_failed(5, Failure::Shrunk).is_empty());
}

#[test]
fn an_error_about_a_transfer_we_do_not_run_is_passed_on_not_taken_for_the_accept_in_flight() {
    let mut m = downloading(1, 100);
    // A `file_decline` of some other offer answered `unknown_transfer`:
    // before errors named their transfer this failed download 1.
    let stray = error(ErrorCode::UnknownTransfer, None, Some(99));
    assert_eq!(m.on_message(stray.clone()), vec![Action::PassOn(stray)]);
    let too_many = error(ErrorCode::TooManyTransfers, None, Some(98));
    assert_eq!(
        m.on_message(too_many.clone()),
        vec![Action::PassOn(too_many)]
    );
    // Download 1 goes on.
    assert_eq!(
        m.on_message(data(1, 0, 10)),
        vec![Action::Write {
            transfer: 1,
            data: vec![1; 10]
        }]
    );
}

#[test]
fn only_one_file_accept_is_in_flight_and_the_next_goes_out_when_the_first_is_answered() {
    let mut m = downloading(1, 100);
    m.on_message(offer(2, 50));
    assert_eq!(m.start_download(2, part(2), 50, 0).expect("start"), None);
    let actions = m.on_message(data(1, 0, 10));
    assert_eq!(
        actions,
        vec![
            Action::Write {
                transfer: 1,
                data: vec![1; 10]
            },
            accept(2, 0),
        ]
    );
    // An answer by an error moves the queue on just the same.
    m.on_message(offer(3, 50));
    assert_eq!(m.start_download(3, part(3), 50, 20).expect("start"), None);
    let actions = m.on_message(error(ErrorCode::TooManyTransfers, None, Some(2)));
    assert_eq!(failure(&actions).0, Some(ErrorCode::TooManyTransfers));
    assert_eq!(actions.last(), Some(&accept(3, 20)));
}

#[test]
fn an_offer_gone_before_our_accept_fails_the_download_and_drops_its_empty_part() {
    let mut m = downloading(1, 100);
    let actions = m.on_message(error(ErrorCode::UnknownTransfer, None, Some(1)));
    assert_eq!(actions[0], Action::DiscardPart(1));
    assert_eq!(
        failure(&actions),
        (Some(ErrorCode::UnknownTransfer), "refused".into(), None)
    );
    assert!(m.offer_of(1).is_none(), "the offer is gone");
    assert_eq!(m.partial_file(1), None);
}

#[test]
fn a_refused_resume_keeps_the_part_it_started_from() {
    let mut m = Machine::new(MB);
    m.on_message(offer(1, 100));
    m.start_download(1, part(1), 100, 40).expect("start");
    let actions = m.on_message(error(ErrorCode::BadOffset, None, Some(1)));
    assert_eq!(actions[0], Action::KeepPart(1));
    assert_eq!(failure(&actions).2, Some(part(1)));
    assert_eq!(m.partial_file(1), Some(part(1)));
    assert!(m.offer_of(1).is_some(), "the offer stays");
}

#[test]
fn a_rate_limited_without_ref_answers_the_accept_in_flight_if_there_is_one() {
    let mut m = Machine::new(MB);
    let limited = error(ErrorCode::RateLimited, None, None);
    assert_eq!(
        m.on_message(limited.clone()),
        vec![Action::PassOn(limited.clone())]
    );
    let mut m = downloading(1, 100);
    let actions = m.on_message(limited);
    assert_eq!(failure(&actions).0, Some(ErrorCode::RateLimited));
}

#[test]
fn a_cancel_too_late_completes_the_download_and_its_unknown_transfer_is_swallowed() {
    // The error overtakes the `file_done` (errors are not bulk) ...
    let mut m = downloading(1, 4);
    m.on_message(data(1, 0, 4));
    m.written(1, 4);
    m.cancel(1).expect("cancel");
    assert!(
        m.on_message(error(ErrorCode::UnknownTransfer, None, Some(1)))
            .is_empty()
    );
    assert_eq!(m.on_message(done(1)), vec![Action::Finish(1)]);
    // ... or comes after it.
    let mut m = downloading(1, 4);
    m.on_message(data(1, 0, 4));
    m.written(1, 4);
    m.cancel(1).expect("cancel");
    assert_eq!(m.on_message(done(1)), vec![Action::Finish(1)]);
    assert!(
        m.on_message(error(ErrorCode::UnknownTransfer, None, Some(1)))
            .is_empty()
    );
    // Only once: a later one is someone else's business.
    let again = error(ErrorCode::UnknownTransfer, None, Some(1));
    assert_eq!(m.on_message(again.clone()), vec![Action::PassOn(again)]);
}

#[test]
fn the_cancel_of_a_download_whose_accept_failed_is_not_reported() {
    let mut m = downloading(1, 100);
    m.cancel(1).expect("cancel");
    let actions = m.on_message(error(ErrorCode::UnknownTransfer, None, Some(1)));
    assert_eq!(failure(&actions).0, Some(ErrorCode::UnknownTransfer));
    assert!(
        m.on_message(error(ErrorCode::UnknownTransfer, None, Some(1)))
            .is_empty()
    );
}
