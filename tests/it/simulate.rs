//! `lastseen simulate`: starts, prints its URLs and tokens, serves real Slack answers, stops on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn get(url: &str, path: &str, token: &str) -> String {
    let hostport = url.trim_start_matches("http://").split('/').next().unwrap();
    let mut s = TcpStream::connect(hostport).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn simulate_prints_urls_and_tokens_and_serves_slack() {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("lastseen"))
        .args(["-q", "simulate", "--plan", "pro", "--users", "40", "--rate-scale", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut api = None;
    let mut token = None;
    for line in lines.by_ref().take(12) {
        let line = line.unwrap();
        if let Some(v) = line.trim().strip_prefix("web api") {
            api = Some(v.trim().to_string());
        }
        if let Some(v) = line.trim().strip_prefix("user token") {
            token = Some(v.trim().to_string());
        }
        if line.starts_with("Try:") {
            break;
        }
    }
    let (api, token) = (api.expect("web api line"), token.expect("user token line"));
    assert!(api.starts_with("http://127.0.0.1:") && token.starts_with("xoxp-"));
    let reply = get(&api, "/api/users.list?limit=5", &token);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body: serde_json::Value = serde_json::from_str(reply.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["ok"], true);
    assert!(!body["members"].as_array().unwrap().is_empty());
    let reply = get(&api, "/api/users.list?limit=5", "xoxp-not-a-token");
    assert!(reply.contains("invalid_auth"), "{reply}");

    // SIGTERM stops it cleanly.
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
}
