//! The gotty example service end to end, with its real container: `/gotty/`
//! allocates a space, the page and every file it loads come from the
//! container under relative URLs, the terminal's WebSocket (tty-web's
//! protocol) reaches a shell working in `/spaces/data/tree`, and what the
//! shell writes there is still there in a new container after `docker kill`
//! (and not in another space). A WebSocket from a foreign `Origin` is refused.
//! Two sessions on one URL share one container, `fork:` opens a terminal on
//! a copy, and the files outlive idle reaping and a daemon restart.

mod common;

use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// tty-web's frames: the first byte is the command.
const INPUT: u8 = 0x00;
const OUTPUT: u8 = 0x00;
const SESSION_ID: u8 = 0x10;
const REPLAY_END: u8 = 0x14;

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// One shell over the terminal's WebSocket.
struct Shell {
    ws: Ws,
    /// Everything the terminal printed so far.
    seen: String,
}

impl Shell {
    /// Opens `/<viewspec>/ws` through the daemon and waits for the handshake
    /// (session id … end of replay).
    async fn open(daemon: &Daemon, viewspec: &str) -> Shell {
        let stream = tokio::net::TcpStream::connect(&daemon.addr).await.unwrap();
        let url = format!("ws://{}/{viewspec}/ws", daemon.addr);
        let (ws, resp) = tokio_tungstenite::client_async(url, stream).await.unwrap();
        assert_eq!(resp.status(), 101);
        let mut shell = Shell {
            ws,
            seen: String::new(),
        };
        let first = shell.frame().await;
        assert_eq!(first[0], SESSION_ID, "the first frame names the session: {first:?}");
        while shell.frame().await[0] != REPLAY_END {}
        shell
    }

    /// The next binary frame; output frames are added to `seen`.
    async fn frame(&mut self) -> Vec<u8> {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no frame within 30 s; the terminal showed:\n{}", self.seen))
                .expect("the WebSocket closed")
                .expect("a WebSocket frame");
            if let Message::Binary(data) = msg {
                assert!(!data.is_empty(), "an empty frame");
                if data[0] == OUTPUT {
                    self.seen.push_str(&String::from_utf8_lossy(&data[1..]));
                }
                return data.to_vec();
            }
        }
    }

    /// Types `line` and a command printing a marker the typed text does not
    /// contain (`$((…))` is only expanded by the shell), and returns what the
    /// terminal printed until the marker.
    async fn run(&mut self, line: &str, n: u32) -> String {
        let start = self.seen.len();
        let typed = format!("{line}; echo done-$(({n}+1))\r");
        let mut frame = vec![INPUT];
        frame.extend_from_slice(typed.as_bytes());
        self.ws.send(Message::binary(frame)).await.unwrap();
        let marker = format!("done-{}", n + 1);
        while !self.seen[start..].contains(&marker) {
            self.frame().await;
        }
        self.seen[start..].to_owned()
    }
}

/// The lines of terminal output, without carriage returns.
fn lines(out: &str) -> Vec<&str> {
    out.lines().map(|l| l.trim_end_matches('\r')).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_whose_files_survive_its_container() {
    example_images();
    let ns = Namespace::new("gotty");
    let tmp = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(&tmp.path().join("data"), &test_defs(tmp.path(), &[]), &ns.name);
    let client = http();

    // /gotty/ allocates a space and redirects to it.
    let resp = client.get(daemon.url("/gotty/")).send().await.unwrap();
    assert_eq!(resp.status(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/gotty;data=sp-") && location.ends_with('/'),
        "{location}"
    );
    let viewspec = location.trim_matches('/').to_owned();

    // The page, and each file it loads, from the container, by relative URL.
    let page_url = daemon.url(&location);
    let resp = client.get(&page_url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let page = resp.text().await.unwrap();
    let refs = references(&page);
    for want in ["xterm.js", "addon-fit.js", "app.js", "xterm.css"] {
        assert!(
            refs.iter().any(|r| r == want),
            "the page does not load {want}: {refs:?}"
        );
    }
    for r in &refs {
        if r.starts_with("data:") {
            continue; // inline (the empty favicon): loads nothing
        }
        assert!(
            !r.contains("//") && !r.starts_with('/'),
            "{r} is not relative to the page"
        );
        let resp = client.get(format!("{page_url}{r}")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{r}");
        let body = resp.bytes().await.unwrap();
        assert!(body.len() > 100, "{r} is {} bytes", body.len());
    }
    let xterm = client.get(format!("{page_url}xterm.js")).send().await.unwrap();
    assert!(
        xterm.text().await.unwrap().contains("Terminal"),
        "xterm.js is not xterm.js"
    );
    let containers = ns.containers(false);
    assert_eq!(containers.len(), 1, "one gotty container");

    // A browser on another site may not open this shell.
    let mut foreign = format!("ws://{}/{viewspec}/ws", daemon.addr)
        .into_client_request()
        .unwrap();
    foreign
        .headers_mut()
        .insert("origin", "http://elsewhere.example".parse().unwrap());
    let stream = tokio::net::TcpStream::connect(&daemon.addr).await.unwrap();
    match tokio_tungstenite::client_async(foreign, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("a foreign Origin was not refused: {:?}", other.map(|(_, r)| r.status())),
    }

    // The shell works in the data space; write a file there.
    let mut shell = Shell::open(&daemon, &viewspec).await;
    let out = shell.run("pwd", 1).await;
    assert!(lines(&out).contains(&"/spaces/data/tree"), "pwd printed:\n{out}");
    shell.run("echo hello > greeting.txt", 2).await;
    drop(shell);

    // Kill the container; the same URL gets a new one with the same space.
    let out = docker(&["kill", &containers[0]]);
    assert!(out.status.success(), "docker kill: {}", stderr(&out));
    ns.wait_for("the killed container to stop", Duration::from_secs(15), |c| {
        !c.contains(&containers[0])
    });
    let mut shell = Shell::open(&daemon, &viewspec).await;
    let now = ns.containers(false);
    assert_eq!(now.len(), 1, "one gotty container again: {now:?}");
    assert_ne!(now, containers, "a new container");
    let out = shell.run("cat greeting.txt", 3).await;
    assert!(lines(&out).contains(&"hello"), "cat greeting.txt printed:\n{out}");

    // The file is the space's: a terminal on a new space does not have it.
    let resp = client.get(daemon.url("/gotty/")).send().await.unwrap();
    let other = location_viewspec(&resp);
    assert_ne!(other, viewspec);
    let mut shell = Shell::open(&daemon, &other).await;
    let out = shell.run("cat greeting.txt || echo missing-$((6*7))", 4).await;
    assert!(lines(&out).contains(&"missing-42"), "cat greeting.txt printed:\n{out}");
}

/// The `src` and `href` attribute values of a page.
fn references(page: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = page;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').expect("a closing quote");
            found.push(rest[..end].to_owned());
            rest = &rest[end..];
        }
    }
    found
}

/// The space of `viewspec` (`gotty;data=sp-…`).
fn space_of(viewspec: &str) -> &str {
    viewspec.split("data=").nth(1).expect("a data space")
}

/// Where a redirect for `path` leads, as a viewspec.
async fn redirected(daemon: &Daemon, path: &str) -> String {
    let resp = http().get(daemon.url(path)).send().await.unwrap();
    assert_eq!(resp.status(), 307, "{path}");
    location_viewspec(&resp)
}

/// The rest of the seed's promise: one URL is one terminal wherever it is
/// opened (two sessions, one container), `fork:` opens a terminal on a copy
/// that then diverges, and the files outlive idle reaping and a restart of
/// the daemon (`kill -9`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_terminal_is_shared_forked_and_kept_across_reaping_and_restarts() {
    example_images();
    let ns = Namespace::new("gottylife");
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let defs = test_defs(tmp.path(), &[]);
    let flags = ["--idle-timeout", "2s", "--pause-after", "0"];
    let mut daemon = Daemon::start_with(&data, &defs, &ns.name, &flags);
    let viewspec = redirected(&daemon, "/gotty/").await;

    // Two sessions on one URL: one container, one shared tree.
    let mut first = Shell::open(&daemon, &viewspec).await;
    let mut second = Shell::open(&daemon, &viewspec).await;
    assert_eq!(ns.containers(false).len(), 1, "two containers for one URL");
    first.run("echo hello > greeting.txt", 1).await;
    let out = second.run("cat greeting.txt", 2).await;
    assert!(
        lines(&out).contains(&"hello"),
        "the second session did not see the file:\n{out}"
    );

    // fork: a terminal on a copy, which then diverges from the original.
    let fork = redirected(&daemon, &format!("/gotty;data=fork:{}/", space_of(&viewspec))).await;
    assert_ne!(space_of(&fork), space_of(&viewspec));
    let mut forked = Shell::open(&daemon, &fork).await;
    let out = forked.run("cat greeting.txt && echo changed > greeting.txt", 3).await;
    assert!(lines(&out).contains(&"hello"), "the fork lacks the file:\n{out}");
    let out = first.run("cat greeting.txt", 4).await;
    assert!(
        lines(&out).contains(&"hello"),
        "the fork's write reached the original:\n{out}"
    );
    drop((first, second, forked));

    // Idle reaping (2 s with no session open) stops both; the files stay.
    ns.wait_for("the idle terminals to be reaped", Duration::from_secs(30), |c| {
        c.is_empty()
    });
    let mut shell = Shell::open(&daemon, &viewspec).await;
    let out = shell.run("cat greeting.txt", 5).await;
    assert!(lines(&out).contains(&"hello"), "lost after reaping:\n{out}");
    drop(shell);

    // A daemon killed and started again: the same URL, the same files.
    daemon.signal_and_wait(libc::SIGKILL, Duration::from_secs(10)).unwrap();
    drop(daemon);
    daemon = Daemon::start_with(&data, &defs, &ns.name, &flags);
    let mut shell = Shell::open(&daemon, &viewspec).await;
    let out = shell.run("cat greeting.txt", 6).await;
    assert!(lines(&out).contains(&"hello"), "lost after a restart:\n{out}");
    let mut shell = Shell::open(&daemon, &fork).await;
    let out = shell.run("cat greeting.txt", 7).await;
    assert!(lines(&out).contains(&"changed"), "the fork lost its change:\n{out}");
}
