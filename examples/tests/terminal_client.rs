//! The `chat` and `bot` examples as programs: each test hosts a real
//! chatcore server in-process on a free port and runs the compiled example
//! binaries as child processes, talking to them over stdin/stdout.
//!
//! `cargo test -p chat-examples` builds the examples before running this
//! (they sit in `target/<profile>/examples/`). Running only this test
//! target (`--test terminal_client`) does not build them; a missing binary
//! fails with a message saying so.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::thread;
use std::time::{Duration, Instant};

use chatcore::protocol::transfer::FileOffer;
use chatcore::protocol::{ClientMessage, ServerMessage};
use chatcore::{Client, Event, RunningServer, Server};

/// Upper bound for any single wait.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A server on 127.0.0.1, any free port, without voice.
fn start_server() -> RunningServer {
    Server::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .voice_listen(None)
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server")
}

/// An example binary next to this test's: `.../debug/deps/terminal_client-*`
/// -> `.../debug/examples/NAME`.
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test binary in <target>/<profile>/deps");
    let path = profile_dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "{} is missing: run `cargo test -p chat-examples` (which builds the examples) \
         or `cargo build -p chat-examples --examples` first",
        path.display()
    );
    path
}

/// Which stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stream {
    Out,
    Err,
}

/// A child process whose output lines are collected as they come. Killed
/// (and reaped) when dropped, so no test leaves one behind, even on panic.
struct Proc {
    label: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Stream, String)>,
    /// Everything read so far, for failure messages and later checks.
    seen: Vec<(Stream, String)>,
}

impl Proc {
    fn spawn(label: &str, program: &str, args: &[&str]) -> Self {
        Self::spawn_env(label, program, args, &[])
    }

    /// Like `spawn`, with extra environment variables.
    fn spawn_env(label: &str, program: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(example(program))
            .args(args)
            .envs(env.iter().copied())
            // The embedded server under test speaks plain TCP.
            .arg("--no-tls")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .spawn()
            .unwrap_or_else(|e| panic!("start {program}: {e}"));
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        forward(stdout, Stream::Out, tx.clone());
        forward(stderr, Stream::Err, tx);
        Self {
            label: label.to_owned(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Runs `chat --server ADDR --name NAME`.
    fn chat(server: &RunningServer, name: &str) -> Self {
        let addr = server.local_addr().to_string();
        Self::spawn(name, "chat", &["--server", &addr, "--name", name])
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("{}: write {line:?}: {e}", self.label));
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits (at most [`TIMEOUT`]) for a stdout line matching `pred`; returns it.
    fn expect_out(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        self.expect(Stream::Out, what, pred)
    }

    fn expect(&mut self, stream: Stream, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) => {
                    self.seen.push((s, line.clone()));
                    if s == stream && pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    self.fail(&format!("timed out waiting for {what}"))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.fail(&format!("output ended before {what}"))
                }
            }
        }
    }

    /// Waits (at most [`TIMEOUT`]) for the process to exit, then collects
    /// the rest of its output.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                Ok(None) => self.fail("timed out waiting for the process to exit"),
                Err(e) => self.fail(&format!("wait: {e}")),
            }
        };
        // The pipes close with the process; take what is left.
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            self.seen.push(line);
        }
        status
    }

    fn stdout_lines(&self) -> Vec<&str> {
        self.seen
            .iter()
            .filter(|(s, _)| *s == Stream::Out)
            .map(|(_, l)| l.as_str())
            .collect()
    }

    fn fail(&mut self, why: &str) -> ! {
        let _ = self.child.kill();
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
        let transcript: Vec<String> = self
            .seen
            .iter()
            .map(|(s, l)| format!("  {s:?}: {l}"))
            .collect();
        panic!(
            "{}: {why}; output so far:\n{}",
            self.label,
            transcript.join("\n")
        );
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends each line of `from` to `tx` until end of file.
fn forward(from: impl Read + Send + 'static, stream: Stream, tx: Sender<(Stream, String)>) {
    thread::spawn(move || {
        for line in BufReader::new(from).lines() {
            let Ok(line) = line else { return };
            if tx.send((stream, line)).is_err() {
                return;
            }
        }
    });
}

/// `[12:34:56Z] alice: text`?
fn is_chat(line: &str, from: &str, text: &str) -> bool {
    let Some(rest) = line.strip_prefix('[') else {
        return false;
    };
    let Some((time, said)) = rest.split_once("] ") else {
        return false;
    };
    let t = time.as_bytes();
    time.len() == 9
        && t[2] == b':'
        && t[5] == b':'
        && t[8] == b'Z'
        && said == format!("{from}: {text}")
}

#[test]
fn two_users_chat_list_each_other_and_quit() {
    let server = start_server();

    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");
    alice.expect_out("alice's roster", |l| l == "* 1 online: alice");
    alice.expect_out("alice's history", |l| l == "* no recent messages");

    let mut bob = Proc::chat(&server, "bob");
    bob.expect_out("bob's login", |l| l == "* you are bob");
    bob.expect_out("bob's roster", |l| l == "* 2 online: alice, bob");
    alice.expect_out("bob's arrival", |l| l == "* bob joined (2 online)");

    alice.send("hello from alice");
    let line = bob.expect_out("alice's message", |l| {
        is_chat(l, "alice", "hello from alice")
    });
    assert!(line.starts_with('['), "{line}");
    // The sender sees its own message come back from the server too.
    alice.expect_out("alice's own copy", |l| {
        is_chat(l, "alice", "hello from alice")
    });

    bob.send("/who");
    bob.expect_out("/who", |l| l == "* 2 online: alice, bob");

    // A second alice is renamed and sees the history.
    let mut alice2 = Proc::chat(&server, "alice");
    alice2.expect_out("renamed login", |l| {
        l == "* you are alice(1) (alice was taken)"
    });
    alice2.expect_out("roster", |l| l == "* 3 online: alice, alice(1), bob");
    alice2.expect_out("history", |l| is_chat(l, "alice", "hello from alice"));
    bob.expect_out("alice(1) arrival", |l| l == "* alice(1) joined (3 online)");
    alice2.send("/quit");
    assert_eq!(alice2.wait_exit().code(), Some(0), "/quit exits 0");
    bob.expect_out("alice(1) leaving", |l| {
        l == "* alice(1) left (quit) (2 online)"
    });

    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0), "/quit exits 0");
    bob.expect_out("alice leaving", |l| l == "* alice left (quit) (1 online)");

    // End of input is a quit too.
    bob.close_stdin();
    assert_eq!(bob.wait_exit().code(), Some(0), "EOF exits 0");

    // Nothing but transcript lines on stdout: no prompts, no escape codes.
    for line in bob.stdout_lines() {
        assert!(
            line.starts_with("* ") || line.starts_with('['),
            "unexpected line {line:?}"
        );
        assert!(!line.contains('\x1b'), "escape code in {line:?}");
    }
}

#[test]
fn an_empty_name_is_refused_with_the_servers_message() {
    let server = start_server();
    let addr = server.local_addr().to_string();

    // The name asked for on stdin; stdin is not a terminal, so no second try.
    let mut nobody = Proc::spawn("nobody", "chat", &["--server", &addr]);
    nobody.send("   ");
    nobody.expect_out("the refusal", |l| {
        l == "! error name_empty: the name is empty"
    });
    let status = nobody.wait_exit();
    assert!(!status.success(), "a refused name exits non-zero: {status}");
    assert!(
        nobody
            .seen
            .iter()
            .any(|(s, l)| *s == Stream::Err && l.starts_with("name: ")),
        "the name was asked for on stderr: {:?}",
        nobody.seen
    );

    // The same from the command line.
    let mut empty = Proc::chat(&server, "");
    empty.expect_out("the refusal", |l| {
        l == "! error name_empty: the name is empty"
    });
    assert!(!empty.wait_exit().success());
}

#[test]
fn with_no_reconnect_the_client_exits_non_zero_when_the_server_goes_away() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let args = ["--server", &addr, "--name", "carol", "--no-reconnect"];
    let mut carol = Proc::spawn("carol", "chat", &args);
    carol.expect_out("carol's login", |l| l == "* you are carol");
    server.stop().expect("stop the server");
    carol.expect_out("the reason", |l| l == "* you were removed (shutdown)");
    carol.expect_out("the disconnection", |l| {
        l == "! disconnected: removed by the server (shutdown)"
    });
    let status = carol.wait_exit();
    assert_eq!(status.code(), Some(1), "{status}");
}

#[test]
fn the_bot_answers_ping_echo_and_who() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let mut bot = Proc::spawn("bot", "bot", &["--server", &addr]);
    bot.expect_out("the bot's login", |l| {
        l.starts_with("* bot logged in as bot")
    });

    let dave = Client::connect_plain(server.local_addr(), "dave").expect("dave logs in");
    let answer = |question: &str| -> String {
        dave.send_chat(question).expect("send");
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match dave.recv_timeout(left).expect("connection open") {
                Some(Event::Message(ServerMessage::Chat(chat))) if chat.from == "bot" => {
                    return chat.text;
                }
                Some(Event::Closed(why)) => panic!("closed while waiting: {why}"),
                Some(_) => {}
                None => panic!("no answer from the bot to {question:?}"),
            }
        }
    };
    assert_eq!(answer("!ping"), "pong");
    assert_eq!(answer("!echo hi  there"), "hi  there");
    assert_eq!(answer("!who"), "2 online: bot, dave");
    assert!(answer("!time").starts_with("server time: 20"));
    // The bot saw dave's messages like the terminal client would.
    bot.expect_out("dave's ping", |l| is_chat(l, "dave", "!ping"));
    bot.expect_out("its own answer", |l| is_chat(l, "bot", "pong"));

    drop(dave);
    server.stop().expect("stop the server");
    assert!(
        bot.wait_exit().success(),
        "the bot exits 0 when the server shuts down"
    );
}

/// A directory of its own under the system temporary directory, removed
/// when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "chat-examples-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create a temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_file_goes_from_one_terminal_to_another() {
    let tmp = TempDir::new("files");
    let spool = tmp.0.join("spool");
    let server = Server::builder()
        .config(chatcore::ServerConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            voice_listen: None,
            spool_dir: Some(spool),
            ..chatcore::ServerConfig::default()
        })
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server");
    let addr = server.local_addr().to_string();
    // 3 MiB and a bit, so there is progress to report.
    let content: Vec<u8> = (0..3 * 1024 * 1024 + 7u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let src = tmp.0.join("my report.pdf");
    std::fs::write(&src, &content).expect("write the file");
    let downloads = tmp.0.join("inbox");

    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");
    let mut bob = Proc::spawn(
        "bob",
        "chat",
        &[
            "--server",
            &addr,
            "--name",
            "bob",
            "--downloads",
            downloads.to_str().expect("utf-8 path"),
        ],
    );
    bob.expect_out("bob's login", |l| l == "* you are bob");
    alice.expect_out("bob's arrival", |l| l == "* bob joined (2 online)");

    alice.send(&format!("/send {}", src.display()));
    alice.expect_out("the upload", |l| {
        l == "* sending my report.pdf (3.1 MB) as transfer 1"
    });
    alice.expect_out("the last progress line", |l| l == "* 1: 3.0 of 3.0 MiB");
    alice.expect_out("the offer", |l| {
        l == "* my report.pdf is on offer (transfer 1)"
    });
    bob.expect_out("the offer", |l| {
        l == "* alice offers my report.pdf (3.1 MB) \u{2014} /accept 1 or /decline 1"
    });
    bob.send("/files");
    bob.expect_out("the list", |l| {
        l == "* 1: my report.pdf (3.1 MB) from alice"
    });
    bob.send("/accept 1");
    bob.expect_out("the download", |l| {
        l.starts_with("* downloading my report.pdf (3.1 MB) to ")
            && l.ends_with("my report.pdf.part")
    });
    bob.expect_out("progress", |l| l == "* 1: 3.0 of 3.0 MiB");
    let saved = bob.expect_out("the saved file", |l| l.starts_with("* saved "));
    let path = downloads.join("my report.pdf");
    assert_eq!(
        saved,
        format!("* saved my report.pdf to {} (sha256 ok)", path.display())
    );
    assert!(std::fs::read(&path).expect("read the copy") == content);

    // Bad or unknown ids are explained, not fatal; chat still works.
    bob.send("/accept x");
    bob.expect_out("usage", |l| l == "! usage: /accept ID");
    bob.send("/cancel 99");
    bob.expect_out("unknown", |l| {
        l == "! cannot cancel 99: no file transfer 99 known"
    });
    bob.send("/send /no/such/file");
    bob.expect_out("a missing file", |l| {
        l.starts_with("! cannot send /no/such/file: ")
    });
    bob.send("/decline 1");
    bob.expect_out("declined", |l| l == "* declined my report.pdf");
    bob.send("/files");
    bob.expect_out("nothing left", |l| l == "* no files on offer");
    bob.send("thanks");
    alice.expect_out("bob's thanks", |l| is_chat(l, "bob", "thanks"));

    // alice withdraws the offer; a newcomer hears of nothing.
    alice.send("/cancel 1");
    alice.expect_out("the withdrawal", |l| l == "* 1: my report.pdf cancelled");
    alice.send("/quit");
    bob.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));
    assert_eq!(bob.wait_exit().code(), Some(0));
}

/// Whether `c` must never reach the terminal raw: controls (ESC...), format
/// and bidi controls, zero-width and tag characters.
fn acts_on_the_terminal(c: char) -> bool {
    c.is_control()
        || chatcore::protocol::text::is_invisible(c)
        || chatcore::protocol::text::is_blank_looking(c)
}

#[test]
fn hostile_names_texts_and_file_names_print_visibly_and_the_server_stands_out() {
    let tmp = TempDir::new("hostile");
    let server = Server::builder()
        .config(chatcore::ServerConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            voice_listen: None,
            spool_dir: Some(tmp.0.join("spool")),
            ..chatcore::ServerConfig::default()
        })
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server");
    let addr = server.local_addr();

    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");

    let fake = Client::connect_plain(addr, "server").expect("a member named server");
    alice.expect_out("the fake's arrival", |l| l == "* server joined (2 online)");
    let starred = Client::connect_plain(addr, "*** server").expect("a member named *** server");
    alice.expect_out("the starred fake's arrival", |l| {
        l == "* \"*** server\" joined (3 online)"
    });
    let three = Client::connect_plain(addr, "bob, carol, dave").expect("one member, three names");
    alice.expect_out("one arrival, not three", |l| {
        l == "* \"bob, carol, dave\" joined (4 online)"
    });

    // The real server, then members pretending to be it.
    server
        .handle()
        .broadcast("restart at noon")
        .expect("broadcast");
    alice.expect_out("the real server", |l| {
        is_chat(l, "*** server", "restart at noon")
    });
    fake.send_chat("restart at noon").expect("send");
    alice.expect_out("the member named server", |l| {
        is_chat(l, "server", "restart at noon")
    });
    starred.send_chat("restart at noon").expect("send");
    alice.expect_out("the member named *** server", |l| {
        is_chat(l, "\"*** server\"", "restart at noon")
    });

    // Bidi override, zero-width, tag characters and an escape sequence.
    fake.send_chat("evil \u{202E}RTL override\u{200B}\u{E0041}\u{1b}[2J")
        .expect("send");
    alice.expect_out("the hostile text, visibly", |l| {
        is_chat(
            l,
            "server",
            "evil <U+202E>RTL override<U+200B><U+E0041><U+001B>[2J",
        )
    });

    // A file name that would read as invoiceexe.pdf. `send_file` would
    // clean the name, so the offer goes out as a raw frame. The server
    // refuses it (docs/protocol.md 17.9 rule 6); how the client shows such a
    // name from an older server is a unit test of `render`.
    fake.send(&ClientMessage::FileOffer(FileOffer {
        room: None,
        to: None,
        name: "invoice\u{202E}fdp.exe".into(),
        size: 5,
        sha256: vec![0; 32],
        kind: chatcore::client::FileKind::File,
        reference: None,
    }))
    .expect("offer");
    let deadline = Instant::now() + Duration::from_secs(10);
    let refused = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match fake.recv_timeout(left).expect("events") {
            Some(Event::Message(ServerMessage::Error(e))) => break e,
            Some(_) => {}
            None => panic!("no answer to the disguised file name"),
        }
    };
    assert_eq!(refused.code, chatcore::protocol::ErrorCode::FileNameInvalid);
    alice.send("/files");
    alice.expect_out("no offer reached anyone", |l| l == "* no files on offer");

    alice.send("/who");
    alice.expect_out("/who with one name per member", |l| {
        l == "* 4 online: \"*** server\", alice, \"bob, carol, dave\", server"
    });

    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));
    drop((fake, starred, three));
    let lines = alice.stdout_lines();
    for line in &lines {
        assert!(
            !line.chars().any(acts_on_the_terminal),
            "a raw control or invisible character in {line:?}"
        );
    }
    // Only the real server's message is marked as the server's.
    let marked: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("] *** server:"))
        .collect();
    assert_eq!(marked.len(), 1, "{lines:?}");
}

#[test]
fn a_look_alike_name_is_refused_with_the_servers_reason() {
    let server = start_server();
    let mut zw = Proc::chat(&server, "al\u{200B}ice");
    zw.expect_out("the refusal", |l| {
        l == "! error name_invalid: the name contains U+200B, an invisible, format or bidi control character"
    });
    assert_eq!(zw.wait_exit().code(), Some(3), "a refused name exits 3");
    let mut cyr = Proc::chat(&server, "\u{430}lice");
    cyr.expect_out("the refusal", |l| {
        l.starts_with("! error name_invalid: the name mixes letters of different scripts")
    });
    assert_eq!(cyr.wait_exit().code(), Some(3));
}

#[test]
fn history_shows_earlier_messages_page_by_page_from_the_servers_store() {
    let dir = std::env::temp_dir().join(format!("chat-examples-history-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let server = Server::builder()
        .config(chatcore::ServerConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            voice_listen: None,
            rate_burst: 1000.0,
            ..chatcore::ServerConfig::default()
        })
        .store(dir.join("chat.db"))
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server");
    let erin = Client::connect_plain(server.local_addr(), "erin").expect("erin");
    for i in 0..60 {
        erin.send_chat(format!("m{i}")).expect("send");
    }
    let mut own = 0;
    while own < 60 {
        if let Ok(Some(Event::Message(ServerMessage::Chat(_)))) = erin.recv_timeout(TIMEOUT) {
            own += 1;
        }
    }
    let mut dave = Proc::chat(&server, "dave");
    // The welcome shows the newest 50: m10..m59.
    dave.expect_out("the welcome's oldest", |l| is_chat(l, "erin", "m10"));
    dave.expect_out("the welcome's newest", |l| is_chat(l, "erin", "m59"));
    dave.send("/history 4");
    dave.expect_out("a page of 4", |l| l == "* 4 earlier messages:");
    for i in 6..10 {
        dave.expect_out("paged message", |l| is_chat(l, "erin", &format!("m{i}")));
    }
    dave.expect_out("more to come", |l| l == "* (more: /history)");
    dave.send("/history");
    dave.expect_out("the rest", |l| l == "* 6 earlier messages:");
    for i in 0..6 {
        dave.expect_out("paged message", |l| is_chat(l, "erin", &format!("m{i}")));
    }
    dave.send("/history");
    dave.expect_out("the end", |l| l == "* no earlier messages");
    dave.send("/history 0");
    dave.expect(Stream::Out, "usage", |l| l == "! usage: /history [N]");
    dave.send("/quit");
    assert_eq!(dave.wait_exit().code(), Some(0));
    let more = dave
        .stdout_lines()
        .iter()
        .filter(|l| **l == "* (more: /history)")
        .count();
    assert_eq!(more, 1, "only the first page said there was more");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_name_registered_with_the_password_env_needs_it_to_log_in_again() {
    let db = std::env::temp_dir().join(format!("chat-example-accounts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&db);
    std::fs::create_dir_all(&db).expect("dir");
    let server = Server::builder()
        .listen("127.0.0.1:0".parse().expect("address"))
        .voice_listen(None)
        .store(db.join("chat.db"))
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server");
    let addr = server.local_addr().to_string();
    let pw = [("CHAT_TEST_PASSWORD", "olga's password")];
    let args = [
        "--server",
        &addr,
        "--name",
        "olga",
        "--password-env",
        "CHAT_TEST_PASSWORD",
    ];

    let mut first = Proc::spawn_env("first", "chat", &[&args[..], &["--register"]].concat(), &pw);
    first.expect_out("the registration", |l| l.starts_with("* registered olga"));
    first.close_stdin();
    assert!(first.wait_exit().success());

    let mut guest = Proc::chat(&server, "olga");
    guest.expect_out("the refusal", |l| l.starts_with("! error name_registered"));
    assert!(!guest.wait_exit().success());

    let mut again = Proc::spawn_env("again", "chat", &args, &pw);
    again.expect_out("the login", |l| l == "* you are olga");
    again.close_stdin();
    assert!(again.wait_exit().success());

    let wrong = [("CHAT_TEST_PASSWORD", "not the password")];
    let mut wrong = Proc::spawn_env("wrong", "chat", &args, &wrong);
    wrong.expect_out("the refusal", |l| l.starts_with("! error auth_failed"));
    assert!(!wrong.wait_exit().success());
    drop(server);
    let _ = std::fs::remove_dir_all(&db);
}

/// A server with its history store at `db`, listening on `addr` (port 0:
/// any free one): what a restart starts again on the same port and file.
fn start_stored_server(addr: &str, db: &std::path::Path) -> RunningServer {
    Server::builder()
        .listen(addr.parse().expect("address"))
        .voice_listen(None)
        .store(db.to_path_buf())
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server")
}

/// A fresh scratch directory for one test's store.
fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("chat-examples-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

/// Waits until `client` has received its own chat `text` back (so it is
/// stored and delivered).
fn await_own_chat(client: &Client, text: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(Event::Message(ServerMessage::Chat(c)))) = client.recv_timeout(TIMEOUT)
            && c.text == text
        {
            return;
        }
    }
    panic!("{text:?} never came back");
}

/// A TCP relay on 127.0.0.1 in front of a server, whose door the test
/// opens and shuts: while shut, each new connection is closed at once (a
/// reconnect fails), so what happens while a client is away does not
/// depend on how fast its reconnect is. Open connections end when the
/// server closes them.
struct Door {
    addr: String,
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Door {
    /// A relay to `upstream`, open.
    fn new(upstream: String) -> Self {
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let addr = listener.local_addr().expect("relay address").to_string();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
        let gate = open.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !gate.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(&upstream) else {
                    continue;
                };
                let pump = |mut from: TcpStream, mut to: TcpStream| {
                    thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                };
                let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
                    continue;
                };
                pump(client, server);
                pump(s2, c2);
            }
        });
        Self { addr, open }
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, std::sync::atomic::Ordering::SeqCst);
    }
}

#[test]
fn the_terminal_client_reconnects_after_a_server_restart_and_prints_exactly_the_messages_it_missed()
{
    let dir = scratch("reconnect");
    let db = dir.join("chat.db");
    let server = start_stored_server("127.0.0.1:0", &db);
    let addr = server.local_addr().to_string();
    let door = Door::new(addr.clone());
    let mut alice = Proc::spawn(
        "alice",
        "chat",
        &["--server", &door.addr, "--name", "alice"],
    );
    alice.expect_out("alice's login", |l| l == "* you are alice");
    let bob = Client::connect_plain(&addr, "bob").expect("bob");
    bob.send_chat("before the restart").expect("send");
    alice.expect_out("the first chat", |l| {
        is_chat(l, "bob", "before the restart")
    });
    drop(bob);

    // Alice stays away until the door opens again.
    door.set_open(false);
    server.stop().expect("stop the server");
    alice.expect_out("the loss", |l| {
        l.starts_with("* connection lost: ") && l.ends_with("; reconnecting in 1s")
    });
    alice.expect_out("the failed try", |l| {
        l.starts_with("* reconnect failed: ") && l.ends_with("; retrying in 2s")
    });
    alice.send("said while away");
    alice.expect_out("the refusal", |l| l == "* not connected; not sent");

    let server = start_stored_server(&addr, &db);
    let bob = Client::connect_plain(&addr, "bob").expect("bob again");
    for text in ["missed 1", "missed 2", "missed 3"] {
        bob.send_chat(text).expect("send");
        await_own_chat(&bob, text);
    }
    door.set_open(true);
    alice.expect_out("the reconnect", |l| l == "* reconnected; you are alice");
    alice.expect_out("the missed ones", |l| {
        l == "* 3 messages missed while away:"
    });
    alice.expect_out("the last missed chat", |l| is_chat(l, "bob", "missed 3"));
    bob.send_chat("after the reconnect").expect("send");
    alice.expect_out("a live chat", |l| is_chat(l, "bob", "after the reconnect"));
    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));

    let chats: Vec<&str> = alice
        .stdout_lines()
        .into_iter()
        .filter(|l| l.starts_with('['))
        .collect();
    let expected = [
        "before the restart",
        "missed 1",
        "missed 2",
        "missed 3",
        "after the reconnect",
    ];
    assert_eq!(chats.len(), expected.len(), "each chat once: {chats:#?}");
    for (line, text) in chats.iter().zip(expected) {
        assert!(is_chat(line, "bob", text), "{line:?} is not bob's {text:?}");
    }
    assert!(
        !alice
            .stdout_lines()
            .iter()
            .any(|l| l.contains("said while away")),
        "the line typed while away was not sent later"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_registered_user_reconnects_with_the_token_and_keeps_the_name() {
    let dir = scratch("token");
    let db = dir.join("chat.db");
    let server = start_stored_server("127.0.0.1:0", &db);
    let addr = server.local_addr().to_string();
    let pw = [("CHAT_TEST_PASSWORD", "petra's password")];
    let args = [
        "--server",
        &addr,
        "--name",
        "petra",
        "--password-env",
        "CHAT_TEST_PASSWORD",
        "--register",
    ];
    let mut petra = Proc::spawn_env("petra", "chat", &args, &pw);
    petra.expect_out("the registration", |l| l.starts_with("* registered petra"));

    server.stop().expect("stop the server");
    petra.expect_out("the loss", |l| l.starts_with("* connection lost: "));
    let server = start_stored_server(&addr, &db);
    petra.expect_out("the reconnect", |l| l == "* reconnected; you are petra");
    // Logged in as the registered name: a guest would be refused it
    // (`name_registered`) and a wrong credential `auth_failed`.
    petra.send("back again");
    petra.expect_out("her chat", |l| is_chat(l, "petra", "back again"));
    petra.send("/quit");
    assert_eq!(petra.wait_exit().code(), Some(0));
    let out = petra.stdout_lines();
    assert!(
        !out.iter().any(|l| l.starts_with("! ")),
        "no error on the way: {out:#?}"
    );
    server.stop().expect("stop the server");
    // The registration issued one token; a password login would have
    // issued a second one, a token login issues none.
    let store = rusqlite::Connection::open(&db).expect("open the store");
    let tokens: i64 = store
        .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))
        .expect("count the tokens");
    assert_eq!(tokens, 1, "the reconnect logged in with the token");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn quitting_while_reconnecting_exits_zero() {
    let server = start_server();
    let mut quinn = Proc::chat(&server, "quinn");
    quinn.expect_out("quinn's login", |l| l == "* you are quinn");
    server.stop().expect("stop the server");
    quinn.expect_out("the loss", |l| l.starts_with("* connection lost: "));
    quinn.send("/quit");
    assert_eq!(quinn.wait_exit().code(), Some(0));
}

#[test]
fn a_guest_renamed_at_login_asks_for_its_own_name_again_when_reconnecting() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let first = Client::connect_plain(&addr, "rita").expect("the first rita");
    let mut rita = Proc::spawn("rita", "chat", &["--server", &addr, "--name", "rita"]);
    rita.expect_out("the renamed login", |l| {
        l == "* you are rita(1) (rita was taken)"
    });
    drop(first);
    server.stop().expect("stop the server");
    rita.expect_out("the loss", |l| l.starts_with("* connection lost: "));
    let server = Server::builder()
        .listen(addr.parse().expect("address"))
        .voice_listen(None)
        .build()
        .expect("bind the server again")
        .spawn()
        .expect("start the server again");
    rita.expect_out("her own name back", |l| l == "* reconnected; you are rita");
    rita.send("/quit");
    assert_eq!(rita.wait_exit().code(), Some(0));
    drop(server);
}

/// Registers `name` with `password` as a fresh guest at `addr`.
fn register(addr: &str, name: &str, password: &str) {
    let guest = Client::connect_plain(addr, name).expect("a guest login");
    assert_eq!(guest.welcome().name, name, "the name is free");
    guest.register(password).expect("register");
    loop {
        match guest.recv_timeout(TIMEOUT) {
            Ok(Some(Event::Message(ServerMessage::Registered(_)))) => return,
            Ok(Some(_)) => {}
            other => panic!("no registered: {other:?}"),
        }
    }
}

/// Sven registers from the terminal client; while he is away the operator
/// deletes the account (revoking its tokens) and the name is registered
/// again with `new_password`. Returns his client once it has reconnected
/// or given up.
fn sven_reconnects_to_a_reregistered_name(tag: &str, new_password: &str) -> Proc {
    let dir = scratch(tag);
    let db = dir.join("chat.db");
    let server = start_stored_server("127.0.0.1:0", &db);
    let addr = server.local_addr().to_string();
    let door = Door::new(addr.clone());
    let pw = [("CHAT_TEST_PASSWORD", "sven's password")];
    let args = [
        "--server",
        &door.addr,
        "--name",
        "sven",
        "--password-env",
        "CHAT_TEST_PASSWORD",
        "--register",
    ];
    let mut sven = Proc::spawn_env("sven", "chat", &args, &pw);
    sven.expect_out("the registration", |l| l.starts_with("* registered sven"));
    door.set_open(false);
    server.stop().expect("stop the server");
    sven.expect_out("the loss", |l| l.starts_with("* connection lost: "));
    let server = start_stored_server(&addr, &db);
    assert!(
        server.handle().delete_account("sven").expect("delete"),
        "the account existed"
    );
    register(&addr, "sven", new_password);
    door.set_open(true);
    sven.expect_out("the outcome", |l| {
        l.starts_with("* reconnected") || l.starts_with("! cannot log in again")
    });
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    sven
}

#[test]
fn a_refused_token_falls_back_to_the_known_password() {
    let sven = sven_reconnects_to_a_reregistered_name("fallback", "sven's password");
    let out = sven.stdout_lines();
    assert_eq!(out.last(), Some(&"* reconnected; you are sven"), "{out:#?}");
}

#[test]
fn a_refused_token_and_password_stop_the_client_with_the_reason() {
    let mut sven = sven_reconnects_to_a_reregistered_name("refused", "someone else's password");
    let out = sven.stdout_lines();
    let last = out.last().map(|l| l.to_string()).unwrap_or_default();
    assert!(
        last.starts_with("! cannot log in again: error auth_failed"),
        "{out:#?}"
    );
    assert_eq!(sven.wait_exit().code(), Some(1));
}

/// `[12:34:56Z] #room alice: text`?
fn is_room_chat(line: &str, room: &str, from: &str, text: &str) -> bool {
    is_chat(line, &format!("#{room} {from}"), text)
}

/// Waits until `client` gets its `room_joined` for `room`.
fn await_room_joined(client: &Client, room: &str) {
    let deadline = Instant::now() + TIMEOUT;
    while Instant::now() < deadline {
        if let Ok(Some(Event::Message(ServerMessage::RoomJoined(j)))) = client.recv_timeout(TIMEOUT)
            && j.room == room
        {
            return;
        }
    }
    panic!("never joined {room}");
}

#[test]
fn the_terminal_client_joins_a_room_sends_to_it_sees_its_lines_marked_with_the_room_and_parts_it() {
    let server = start_server();
    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");
    let mut bob = Proc::chat(&server, "bob");
    bob.expect_out("bob's login", |l| l == "* you are bob");

    alice.send("/join dev");
    alice.expect_out("alice in dev", |l| l == "* you are in #dev (1 here: alice)");
    alice.expect_out("dev is current", |l| l == "* current room: #dev");
    bob.send("/join #dev");
    bob.expect_out("bob in dev", |l| {
        l == "* you are in #dev (2 here: alice, bob)"
    });
    alice.expect_out("bob's arrival in dev", |l| l == "* bob joined #dev");

    alice.send("hello dev");
    bob.expect_out("alice's chat in dev", |l| {
        is_room_chat(l, "dev", "alice", "hello dev")
    });
    alice.expect_out("alice's own copy", |l| {
        is_room_chat(l, "dev", "alice", "hello dev")
    });
    alice.send("/topic ship it friday");
    bob.expect_out("the topic", |l| {
        l == "* alice set the topic of #dev: ship it friday"
    });
    bob.send("/topic");
    bob.expect_out("the topic shown", |l| {
        l == "* topic of #dev: ship it friday"
    });
    bob.send("/who");
    bob.expect_out("who is in dev", |l| l == "* 2 in #dev: alice, bob");

    alice.send("/part");
    alice.expect_out("alice parted", |l| l == "* you left #dev");
    alice.expect_out("back in the lobby", |l| l == "* current room: #lobby");
    bob.expect_out("alice's leave", |l| l == "* alice left #dev (quit)");
    alice.send("/part");
    alice.expect_out("the default room stays", |l| {
        l == "! #lobby is the default room, which cannot be left (/quit leaves the server)"
    });
    alice.send("/room dev");
    alice.expect_out("not in dev any more", |l| {
        l == "! you are not in #dev (/join dev enters it)"
    });
    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));
    // Default-room lines stay as they were: no room mark.
    bob.expect_out("alice's quit", |l| l == "* alice left (quit) (1 online)");
}

#[test]
fn plain_lines_go_to_the_current_room() {
    let server = start_server();
    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");
    let mut bob = Proc::chat(&server, "bob");
    bob.expect_out("bob's login", |l| l == "* you are bob");
    bob.send("/join dev");
    bob.expect_out("bob in dev", |l| l == "* current room: #dev");

    alice.send("/join dev");
    alice.expect_out("dev is current", |l| l == "* current room: #dev");
    alice.send("/join ops");
    alice.expect_out("ops is current", |l| l == "* current room: #ops");
    alice.send("/room");
    alice.expect_out("the rooms", |l| l == "* you are in 3 rooms:");
    alice.expect_out("the default", |l| l == "*   #lobby (default)");
    alice.expect_out("dev", |l| l == "*   #dev");
    alice.expect_out("ops, current", |l| l == "*   #ops (current)");

    alice.send("/room #lobby");
    alice.expect_out("the lobby is current", |l| l == "* current room: #lobby");
    alice.send("to the lobby");
    bob.expect_out("the lobby chat, unmarked", |l| {
        is_chat(l, "alice", "to the lobby")
    });
    alice.send("/room dev");
    alice.expect_out("dev is current again", |l| l == "* current room: #dev");
    alice.send("to dev");
    bob.expect_out("the dev chat, marked", |l| {
        is_room_chat(l, "dev", "alice", "to dev")
    });
    alice.send("/join dev");
    alice.expect_out("a join of a room already in switches", |l| {
        l == "* current room: #dev"
    });
    bob.send("/room lobby");
    bob.expect_out("bob back in the lobby", |l| l == "* current room: #lobby");
    bob.send("bob to the lobby");
    alice.expect_out("bob's lobby chat", |l| {
        is_chat(l, "bob", "bob to the lobby")
    });
    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));
    bob.send("/quit");
    assert_eq!(bob.wait_exit().code(), Some(0));
    // Nothing alice sent to ops reached bob, nothing to dev came unmarked.
    let lines = bob.stdout_lines();
    assert!(
        !lines.iter().any(|l| is_chat(l, "alice", "to dev")),
        "{lines:#?}"
    );
}

#[test]
fn rooms_lists_the_rooms_with_counts_and_topics() {
    let server = start_server();
    let addr = server.local_addr().to_string();
    let bob = Client::connect_plain(&addr, "bob").expect("bob");
    bob.sender().join_room("dev").expect("join");
    await_room_joined(&bob, "dev");
    bob.sender().set_topic("dev", "ship it").expect("topic");
    bob.sender().join_room("ops").expect("join");
    await_room_joined(&bob, "ops");

    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");
    alice.send("/join dev");
    alice.expect_out("alice in dev", |l| l == "* topic: ship it");
    alice.send("/rooms");
    alice.expect_out("the count", |l| l == "* 3 rooms:");
    alice.expect_out("the default room", |l| l == "*   #lobby (default): 2 here");
    alice.expect_out("dev", |l| l == "*   #dev: 2 here \u{2014} ship it");
    alice.expect_out("ops", |l| l == "*   #ops: 1 here");
    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));
}

#[test]
fn after_a_reconnect_the_client_is_back_in_its_rooms_and_prints_each_chat_once() {
    let dir = scratch("rooms-reconnect");
    let db = dir.join("chat.db");
    let server = start_stored_server("127.0.0.1:0", &db);
    let addr = server.local_addr().to_string();
    let door = Door::new(addr.clone());
    let mut alice = Proc::spawn(
        "alice",
        "chat",
        &["--server", &door.addr, "--name", "alice"],
    );
    alice.expect_out("alice's login", |l| l == "* you are alice");
    alice.send("/join ops");
    alice.expect_out("ops is current", |l| l == "* current room: #ops");
    alice.send("/join dev");
    alice.expect_out("dev is current", |l| l == "* current room: #dev");
    let bob = Client::connect_plain(&addr, "bob").expect("bob");
    bob.sender().join_room("dev").expect("join");
    await_room_joined(&bob, "dev");
    bob.sender()
        .send_chat_in("dev", "before the restart")
        .expect("send");
    alice.expect_out("the first chat", |l| {
        is_room_chat(l, "dev", "bob", "before the restart")
    });
    drop(bob);

    door.set_open(false);
    server.stop().expect("stop the server");
    alice.expect_out("the loss", |l| l.starts_with("* connection lost: "));

    let server = start_stored_server(&addr, &db);
    let bob = Client::connect_plain(&addr, "bob").expect("bob again");
    bob.sender().join_room("dev").expect("join");
    await_room_joined(&bob, "dev");
    bob.sender()
        .send_chat_in("dev", "missed in dev")
        .expect("send");
    await_own_chat(&bob, "missed in dev");
    door.set_open(true);
    alice.expect_out("the reconnect", |l| l == "* reconnected; you are alice");
    alice.expect_out("back in dev", |l| l.starts_with("* you are in #dev ("));
    alice.expect_out("the chat missed in dev", |l| {
        is_room_chat(l, "dev", "bob", "missed in dev")
    });
    // Still in ops too, and dev is still the current room.
    alice.send("/room");
    alice.expect_out("dev, current", |l| l == "*   #dev (current)");
    alice.expect_out("ops", |l| l == "*   #ops");
    alice.send("back in dev");
    let mut seen = false;
    let deadline = Instant::now() + TIMEOUT;
    while !seen && Instant::now() < deadline {
        if let Ok(Some(Event::Message(ServerMessage::Chat(c)))) = bob.recv_timeout(TIMEOUT) {
            seen = c.text == "back in dev" && c.room.as_deref() == Some("dev");
        }
    }
    assert!(seen, "alice's line reached dev after the reconnect");
    alice.send("/quit");
    assert_eq!(alice.wait_exit().code(), Some(0));

    let before: Vec<&str> = alice
        .stdout_lines()
        .into_iter()
        .filter(|l| l.contains("before the restart"))
        .collect();
    assert_eq!(before.len(), 1, "each chat once: {before:#?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn files_go_to_the_current_room_or_to_one_member_and_a_private_room_opens_by_invitation() {
    let tmp = TempDir::new("room-files");
    let server = Server::builder()
        .config(chatcore::ServerConfig {
            listen: "127.0.0.1:0".parse().expect("address"),
            voice_listen: None,
            spool_dir: Some(tmp.0.join("spool")),
            ..chatcore::ServerConfig::default()
        })
        .build()
        .expect("bind the server")
        .spawn()
        .expect("start the server");
    let src = tmp.0.join("plan.txt");
    std::fs::write(&src, b"the plan").expect("write the file");
    let mut alice = Proc::chat(&server, "alice");
    alice.expect_out("alice's login", |l| l == "* you are alice");
    let mut bob = Proc::chat(&server, "bob");
    bob.expect_out("bob's login", |l| l == "* you are bob");
    let mut carol = Proc::chat(&server, "carol");
    carol.expect_out("carol's login", |l| l == "* you are carol");

    // A private room: carol may not enter until alice invites her.
    alice.send("/join ops private");
    alice.expect_out("ops is current", |l| l == "* current room: #ops");
    carol.send("/join ops");
    carol.expect_out("refused", |l| {
        l.starts_with("! error invite_only in #ops: ")
    });
    alice.send("/invite carol");
    carol.expect_out("the invitation", |l| {
        l == "* alice invited you to #ops \u{2014} /join ops"
    });
    carol.send("/join ops");
    carol.expect_out("carol in ops", |l| l == "* current room: #ops");

    // A file sent in #ops is offered there only.
    alice.send(&format!("/send {}", src.display()));
    alice.expect_out("on offer", |l| l == "* plan.txt is on offer (transfer 1)");
    carol.expect_out("the room's offer", |l| {
        l.starts_with("* alice offers plan.txt (8 B) in #ops \u{2014} /accept 1")
    });
    // A file sent to bob alone.
    alice.send(&format!("/send @bob {}", src.display()));
    alice.expect_out("on offer", |l| l == "* plan.txt is on offer (transfer 2)");
    bob.expect_out("the direct offer", |l| {
        l.starts_with("* alice offers plan.txt (8 B) to you privately \u{2014} /accept 2")
    });
    // Neither offer reached the wrong people: carol's and bob's lists.
    carol.send("/files");
    carol.expect_out("carol's list", |l| l == "* 1: plan.txt (8 B) from alice");
    bob.send("/files");
    bob.expect_out("bob's list", |l| l == "* 2: plan.txt (8 B) from alice");
    for p in [&mut alice, &mut bob, &mut carol] {
        p.send("/quit");
        assert_eq!(p.wait_exit().code(), Some(0));
    }
    let lines = bob.stdout_lines().join("\n");
    assert!(
        !lines.contains("transfer 1") && !lines.contains("* 1: "),
        "{lines}"
    );
}
