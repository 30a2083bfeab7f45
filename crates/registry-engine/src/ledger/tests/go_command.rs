//! The real go command verifies modules against the ledger (`GOSUMDB="<verifier key> <url>"`),
//! served over HTTP by a minimal server in the test: lookups, full and partial tiles, a
//! consistency proof when the log grew between two runs, and a hash the ledger disagrees with.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;

use strata_core::path::percent_decode_path;
use strata_testkit::{FixtureUpstream, dependency_graph, go_command};
use tokio::runtime::Handle;

use super::*;

/// Serves `/latest`, `/lookup/…` and `/tile/…` of `ledger` on a loopback port, one connection
/// at a time, each closed after its response; the base URL. The thread ends with the process.
fn serve(ledger: Arc<Ledger>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let runtime = Handle::current();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            respond(stream, &ledger, &runtime);
        }
    });
    url
}

fn respond(mut stream: TcpStream, ledger: &Ledger, runtime: &Handle) {
    let mut reader = BufReader::new(&stream);
    let mut request = String::new();
    if reader.read_line(&mut request).is_err() {
        return;
    }
    loop {
        let mut header = String::new();
        match reader.read_line(&mut header) {
            Ok(0) | Err(_) => break,
            Ok(_) if header == "\r\n" => break,
            Ok(_) => {}
        }
    }
    let target = request.split(' ').nth(1).unwrap_or("");
    let path = percent_decode_path(target).unwrap_or_default();
    let result = runtime.block_on(async {
        if path == "/latest" {
            ledger.latest().await.map(Some)
        } else if let Some(key) = path.strip_prefix("/lookup/") {
            ledger.lookup(key).await
        } else if path.starts_with("/tile/") {
            ledger.tile(&path).await
        } else {
            Ok(None)
        }
    });
    let (status, body) = match result {
        Ok(Some(body)) => ("200 OK", body),
        Ok(None) => ("404 Not Found", Bytes::from_static(b"not found\n")),
        Err(e) if e.kind() == ErrorKind::InvalidInput => {
            ("400 Bad Request", Bytes::from(e.to_string()))
        }
        Err(e) => ("500 Internal Server Error", Bytes::from(e.to_string())),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// Runs `go args…` in `dir` (home `home`) on a blocking thread.
async fn go(dir: &Path, home: &Path, proxy: &str, gosumdb: &str, args: &[&str]) -> Output {
    let (dir, home, proxy, gosumdb) = (
        dir.to_owned(),
        home.to_owned(),
        proxy.to_owned(),
        gosumdb.to_owned(),
    );
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        go_command::run(&dir, &home, &proxy, &gosumdb, "", &args)
    })
    .await
    .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Appends filler records `from..to` (other modules than the fixture graph's).
async fn fillers(ledger: &Ledger, range: std::ops::Range<usize>) {
    for i in range {
        append(ledger, i).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_command_verifies_modules_against_the_ledger() {
    let f = Fixture::new();
    let graph = dependency_graph(7);
    let upstream = FixtureUpstream::start(&graph, None).await;
    let record = |i: usize| {
        let m = upstream
            .module(&graph[i].path, &graph[i].version)
            .unwrap()
            .clone();
        let ledger = f.ledger.clone();
        async move {
            let module = ModulePath::new(m.path()).unwrap();
            let version = Version::new(m.version()).unwrap();
            ledger
                .append(&module, &version, &m.zip_hash, &m.go_mod_hash)
                .await
                .unwrap()
        }
    };

    // Graph modules 0..4, then more than a full tile of other records.
    for i in 0..4 {
        record(i).await;
    }
    fillers(&f.ledger, 0..260).await;
    let gosumdb = format!("{} {}", f.ledger.verifier_key(), serve(f.ledger.clone()));
    let root = tempfile::tempdir().unwrap();
    let home: PathBuf = root.path().join("home");
    let dir = home.join("client");
    std::fs::create_dir_all(&dir).unwrap();
    let proxy = upstream.url();
    let out = go(
        &dir,
        &home,
        &proxy,
        &gosumdb,
        &["mod", "init", "example.com/client"],
    )
    .await;
    assert!(out.status.success(), "go mod init: {}", stderr(&out));
    let target = |i: usize| format!("{}@{}", graph[i].path, graph[i].version);

    // Records 0 and 3, proven through the full tile 0 and the level-1 tile.
    let out = go(
        &dir,
        &home,
        &proxy,
        &gosumdb,
        &["get", &target(0), &target(3)],
    )
    .await;
    assert!(out.status.success(), "go get: {}", stderr(&out));
    let go_sum = std::fs::read_to_string(dir.join("go.sum")).unwrap();
    for i in [0, 3] {
        let m = upstream.module(&graph[i].path, &graph[i].version).unwrap();
        assert!(go_sum.contains(&m.go_sum), "{go_sum}");
    }

    // The log grows; the go command, which remembers the head it verified, proves the new one
    // consistent with it.
    fillers(&f.ledger, 260..300).await;
    record(4).await;
    record(5).await;
    let out = go(&dir, &home, &proxy, &gosumdb, &["get", &target(5)]).await;
    assert!(
        out.status.success(),
        "go get {}: {}",
        target(5),
        stderr(&out)
    );
    let latest = std::fs::read(home.join("gopath/pkg/sumdb").join(NAME).join("latest")).unwrap();
    assert_eq!(latest, f.ledger.latest().await.unwrap().as_ref());

    // A version the ledger records with another zip hash: the go command refuses the zip.
    let m6 = upstream.module(&graph[6].path, &graph[6].version).unwrap();
    let (module, version) = (
        ModulePath::new(m6.path()).unwrap(),
        Version::new(m6.version()).unwrap(),
    );
    f.ledger
        .append(&module, &version, &h1("not the zip"), &m6.go_mod_hash)
        .await
        .unwrap();
    let out = go(&dir, &home, &proxy, &gosumdb, &["get", &target(6)]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
}
