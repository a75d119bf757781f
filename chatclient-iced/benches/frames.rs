//! How long one frame of the room takes with 10,000 messages in the list
//! and a new message every 10 ms.
//!
//! ```text
//! cargo bench -p chatclient-iced --bench frames [-- MESSAGES [ARRIVALS]]
//! ```
//!
//! The room is filled with `MESSAGES` chat messages (default 10,000)
//! through the real `App::update`. Then `ARRIVALS` (default 1,000) more
//! arrive one every 10 ms, and each is followed by a full frame as iced's
//! runtime does it: `update`, `view`, layout (`UserInterface::build`, with
//! the widget cache of the previous frame), `draw`, and rasterising the
//! whole 1100×720 window with the software renderer (the real window only
//! redraws what changed, so this is an upper bound). Prints p50, p99 and
//! the maximum of each part and of the whole frame.

use std::time::{Duration, Instant};

use chatclient_iced::net::Event;
use chatclient_iced::screen::room;
use chatclient_iced::{App, Config, Message};
use chatcore::protocol::{Chat, ServerMessage, UserInfo, Welcome};
use iced::Size;
use iced_test::core::renderer::{Headless, Style};
use iced_test::core::widget::operation::scrollable::RelativeOffset;
use iced_test::core::widget::{self, operation::scrollable};
use iced_test::core::{Color, Event as UiEvent, Font, Pixels, clipboard, mouse, time, window};
use iced_test::renderer::Renderer;
use iced_test::runtime::user_interface::{Cache, UserInterface};

const ME: u64 = 1;

fn chat(id: u64) -> Chat {
    let (from, session) = if id.is_multiple_of(3) {
        ("alice", ME)
    } else {
        ("bob", 2)
    };
    Chat {
        room: None,
        id,
        from: from.into(),
        session,
        text: format!("message number {id}: the quick brown fox jumps over the lazy dog"),
        ts: 1_700_000_000_000 + id as i64 * 10,
        reference: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    println!(
        "{name:>10}: p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        percentile(&v, 0.5).as_secs_f64() * 1e3,
        percentile(&v, 0.99).as_secs_f64() * 1e3,
        v.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with('-'));
    let messages: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let arrivals: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);

    let (mut app, _) = App::new(Config::default());
    let welcome = Welcome {
        registered: false,
        token: None,
        version: 1,
        name: "alice".into(),
        session: ME,
        users: vec![
            UserInfo {
                name: "alice".into(),
                session: ME,
            },
            UserInfo {
                name: "bob".into(),
                session: 2,
            },
        ],
        history: Vec::new(),
        heartbeat_ms: 10_000,
        max_frame: 1 << 20,
        max_text: 4096,
    };
    let _ = app.update(Message::Net(Event::LoggedIn(Box::new(welcome))));
    let fill = Instant::now();
    for id in 0..messages {
        let _ = app.update(Message::Net(Event::Server(ServerMessage::Chat(chat(id)))));
    }
    println!(
        "filled the room with {messages} messages in {:.1} ms",
        fill.elapsed().as_secs_f64() * 1e3
    );

    let size = Size::new(1100.0, 720.0);
    let mut renderer = iced::futures::executor::block_on(<Renderer as Headless>::new(
        Font::DEFAULT,
        Pixels(16.0),
        None,
    ))
    .expect("a software renderer");
    let theme = app.theme();
    let style = Style {
        text_color: Color::BLACK,
    };
    let mut cache = Cache::default();
    let (mut t_update, mut t_view, mut t_draw, mut t_raster, mut t_frame) =
        (vec![], vec![], vec![], vec![], vec![]);
    let start = Instant::now();
    for (n, id) in (messages..messages + arrivals).enumerate() {
        // One arrival every 10 ms, as in the requirement.
        let due = start + Duration::from_millis(10 * n as u64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let t0 = Instant::now();
        let _ = app.update(Message::Net(Event::Server(ServerMessage::Chat(chat(id)))));
        let t1 = Instant::now();
        let mut ui =
            UserInterface::build(app.view(), size, std::mem::take(&mut cache), &mut renderer);
        let t2 = Instant::now();
        if n == 0 {
            // What the app's `snap_to_end` task does: from then on the list
            // stays at the bottom, where the newest messages are drawn.
            ui.operate(
                &renderer,
                &mut scrollable::snap_to(
                    widget::Id::new(room::LIST),
                    RelativeOffset {
                        x: None,
                        y: Some(1.0),
                    },
                ),
            );
        }
        let mut produced = Vec::new();
        let _ = ui.update(
            &[UiEvent::Window(window::Event::RedrawRequested(
                time::Instant::now(),
            ))],
            mouse::Cursor::Unavailable,
            &mut renderer,
            &mut clipboard::Null,
            &mut produced,
        );
        ui.draw(&mut renderer, &theme, &style, mouse::Cursor::Unavailable);
        cache = ui.into_cache();
        let t3 = Instant::now();
        let _pixels = renderer.screenshot(
            Size::new(size.width as u32, size.height as u32),
            1.0,
            Color::WHITE,
        );
        let t4 = Instant::now();
        t_update.push(t1 - t0);
        t_view.push(t2 - t1);
        t_draw.push(t3 - t2);
        t_raster.push(t4 - t3);
        t_frame.push(t4 - t0);
    }
    println!(
        "{arrivals} arrivals at one per 10 ms onto {messages} messages, window {}x{}:",
        size.width, size.height
    );
    report("update", t_update);
    report("view+layout", t_view);
    report("draw", t_draw);
    report("rasterise", t_raster);
    report("frame", t_frame);
}
