//! The deployment files in `deploy/`: CI has no Docker engine or cluster, so these check what
//! can be checked without one: the example S3 config loads, every Kubernetes manifest parses as
//! YAML with the expected kind and the settings the README promises, and the Dockerfile builds
//! the binary the way CI does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_norway::Value;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

fn read(rel: &str) -> String {
    let path = deploy_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn no_env() -> Vec<(String, String)> {
    Vec::new()
}

/// Every document of every `deploy/k8s/*.yaml`, keyed by kind.
fn manifests() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(deploy_dir().join("k8s"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).unwrap();
        for doc in serde_norway::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", path.display()));
            let kind = v["kind"].as_str().unwrap_or_else(|| panic!("{}: no kind", path.display())).to_string();
            assert!(v["apiVersion"].is_string(), "{}: no apiVersion", path.display());
            assert!(out.insert(kind.clone(), v).is_none(), "{kind} defined twice");
        }
    }
    out
}

fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    path.split('.').fold(v, |v, k| match k.parse::<usize>() {
        Ok(i) => &v[i],
        Err(_) => &v[k],
    })
}

#[test]
fn example_s3_config_parses() {
    let text = read("lastseen.s3.toml");
    let cfg = lastseen_config::Config::from_toml_str(&text, "deploy/lastseen.s3.toml", no_env()).unwrap();
    assert_eq!(cfg.storage.url.scheme(), "s3");
    assert!(cfg.storage.options.contains_key("aws_region"));
    assert_eq!(cfg.lake.max_snapshot_drop, Some(0.2));
    assert_eq!(cfg.lake.retention.get("slack_access_logs"), Some(&400));
    assert_eq!(cfg.slack.token, lastseen_config::TokenSource::Env("SLACK_TOKEN".into()));
}

#[test]
fn kubernetes_manifests_parse_with_the_expected_kinds_and_settings() {
    let m = manifests();
    assert_eq!(
        m.keys().map(String::as_str).collect::<Vec<_>>(),
        ["ConfigMap", "CronJob", "Deployment", "Secret", "Service"]
    );

    // `lastseen serve` inside the daemon: the Service selects the daemon's pods on 5433.
    let svc = &m["Service"];
    let daemon_labels = at(&m["Deployment"], "spec.template.metadata.labels");
    assert_eq!(at(svc, "spec.selector"), daemon_labels, "the Service selects the daemon Deployment's pods");
    assert_eq!(at(svc, "spec.ports.0.targetPort").as_u64(), Some(5433));

    let secret = &m["Secret"];
    let secret_name = at(secret, "metadata.name").as_str().unwrap();
    assert!(at(secret, "stringData.SLACK_TOKEN").is_string(), "the token is SLACK_TOKEN");

    // The ConfigMap carries deploy/lastseen.s3.toml verbatim, so it loads too.
    let cm = &m["ConfigMap"];
    let cm_name = at(cm, "metadata.name").as_str().unwrap();
    let toml = cm["data"]["lastseen.toml"].as_str().expect("ConfigMap data.\"lastseen.toml\"");
    assert_eq!(toml, read("lastseen.s3.toml"), "configmap.yaml and lastseen.s3.toml have drifted apart");

    let cron = &m["CronJob"];
    assert_eq!(at(cron, "spec.concurrencyPolicy").as_str(), Some("Forbid"));
    assert_eq!(at(cron, "spec.timeZone").as_str(), Some("Etc/UTC"));
    for key in ["startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        assert!(at(cron, "spec").get(key).and_then(Value::as_u64).is_some(), "CronJob spec.{key}");
    }
    let job = at(cron, "spec.jobTemplate.spec");
    assert!(job["backoffLimit"].as_u64().is_some() && job["activeDeadlineSeconds"].as_u64().is_some());
    assert_eq!(at(job, "template.spec.restartPolicy").as_str(), Some("Never"));
    let no_retry: Vec<u64> = job["podFailurePolicy"]["rules"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter(|r| r["action"].as_str() == Some("FailJob"))
        .flat_map(|r| r["onExitCodes"]["values"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|v| v.as_u64())
        .collect();
    assert!(no_retry.contains(&78), "bad configuration (78) must not be retried: {no_retry:?}");
    assert!(!no_retry.contains(&1), "a failed run (1) may be retried");

    for (kind, pod) in
        [("CronJob", at(job, "template.spec")), ("Deployment", at(&m["Deployment"], "spec.template.spec"))]
    {
        let c = &pod["containers"][0];
        assert_eq!(at(c, "envFrom.0.secretRef.name").as_str(), Some(secret_name), "{kind}: token from the Secret");
        let config_volume = pod["volumes"].as_sequence().unwrap().iter().find_map(|v| v["configMap"]["name"].as_str());
        assert_eq!(config_volume, Some(cm_name), "{kind}: config from the ConfigMap");
        assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true), "{kind}");
        assert!(c["env"].as_sequence().unwrap().iter().any(|e| e["name"].as_str() == Some("LASTSEEN_CONFIG")));
    }
    let pod = at(&m["Deployment"], "spec.template.spec");
    let c = &pod["containers"][0];
    assert_eq!(c["args"][0].as_str(), Some("daemon"));
    // The probes and the port match the daemon's listen address in the ConfigMap's config.
    let cfg = lastseen_config::Config::from_toml_str(toml, "configmap.yaml", no_env()).unwrap();
    assert_eq!(at(c, "ports.0.containerPort").as_u64(), Some(u64::from(cfg.daemon.listen.port())));
    assert!(cfg.daemon.listen.ip().is_unspecified(), "the pod's port must be reachable from the kubelet");
    for probe in ["livenessProbe", "readinessProbe"] {
        assert_eq!(at(c, &format!("{probe}.httpGet.path")).as_str(), Some("/healthz"), "{probe}");
        assert_eq!(at(c, &format!("{probe}.httpGet.port")), at(c, "ports.0.name"), "{probe}");
    }
    let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap();
    assert!(cfg.daemon.shutdown_grace.as_secs() < grace, "a run must be able to finish before the pod is killed");
}

#[test]
fn dockerfile_builds_the_release_binary_and_runs_it_unprivileged() {
    let text = read("Dockerfile");
    for needle in [
        "FROM rust:1.95-slim-bookworm AS builder",
        "cargo build --release --locked --bin lastseen",
        "ca-certificates",
        "USER 10001",
        "ENTRYPOINT [\"lastseen\"]",
    ] {
        assert!(text.contains(needle), "deploy/Dockerfile lacks `{needle}`");
    }
    assert_eq!(text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")), 2, "multi-stage");
}

/// The release binary the Dockerfile builds: its `cargo build` line, run exactly as written from
/// the repository root (the image's /src), then the binary run the way the image runs it. CI has
/// no Docker engine, so this is the image build minus the two `FROM`s. A release build takes
/// minutes, so the test is ignored by default and `.ci/run` runs it by name.
#[test]
#[ignore = "a release build (minutes); .ci/run runs it with --ignored"]
fn dockerfile_cargo_build_line_builds_a_binary_that_runs() {
    let text = read("Dockerfile");
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("cargo build"))
        .expect("deploy/Dockerfile has a line starting with `cargo build`");
    let build = line.split("&&").next().unwrap().trim_end_matches('\\').trim();
    let words: Vec<&str> = build.split_whitespace().collect();
    assert!(words.contains(&"--release") && words.contains(&"--locked"), "{build}");

    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let started = std::time::Instant::now();
    let mut cmd = std::process::Command::new(cargo);
    cmd.args(&words[1..]).current_dir(root);
    // `cargo test` gives this process the package's CARGO_PKG_*/CARGO_MANIFEST_* variables.
    // Build scripts (ring's, for one) rerun when those change, so a nested build that kept them
    // would rebuild half the dependency tree instead of reusing a `cargo build --release` made
    // from a shell, and the next shell build would rebuild it back.
    for (k, _) in std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v))) {
        if k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_BIN_EXE_")
            || matches!(k.as_str(), "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR")
        {
            cmd.env_remove(&k);
        }
    }
    let status = cmd.status().unwrap();
    assert!(status.success(), "`{build}` failed");
    eprintln!("`{build}` took {:.0} s", started.elapsed().as_secs_f64());

    // Where the Dockerfile's `install` takes it from: <target>/release/lastseen.
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let bin = target.join("release/lastseen");
    let run = |args: &[&str], config: &Path| {
        std::process::Command::new(&bin)
            .args(args)
            .env_clear()
            .env("LASTSEEN_CONFIG", config)
            .env("LASTSEEN_LOG_FORMAT", "json")
            .output()
            .unwrap()
    };
    let s3 = deploy_dir().join("lastseen.s3.toml");
    let out = run(&["--version"], &s3);
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("lastseen {}", env!("CARGO_PKG_VERSION")));

    let out = run(&["validate"], &s3);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("configuration OK") && stdout.contains("s3://example-lastseen/lake"), "{stdout}");

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[daemon]\nschedule = \"every day\"\n").unwrap();
    let out = run(&["validate"], &bad);
    assert_eq!(out.status.code(), Some(78));
    assert!(String::from_utf8_lossy(&out.stderr).contains("daemon.schedule"));
}
