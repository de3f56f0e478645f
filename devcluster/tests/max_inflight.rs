//! `Config::max_requests_inflight`: beyond it, requests get what kube-apiserver answers beyond
//! `--max-requests-inflight`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams, WatchParams};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};

/// A create whose body the client has not sent yet: from `start` to `finish` the request is in
/// flight. The server answers `Expect: 100-continue` only when the handler reads the body,
/// which is after it took its slot, so `start` returning proves the slot is taken.
struct SlowCreate {
    stream: BufReader<TcpStream>,
    body: String,
}

impl SlowCreate {
    fn start(dc: &DevClusterHandle, name: &str) -> Self {
        let body =
            format!(r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}"}}}}"#);
        let mut stream = TcpStream::connect(dc.addr()).unwrap();
        write!(
            stream,
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: {}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            dc.addr(),
            dc.admin_token(),
            body.len()
        )
        .unwrap();
        let mut stream = BufReader::new(stream);
        let (status, _) = read_head(&mut stream);
        assert_eq!(
            status, 100,
            "the handler reads the body, so it holds its slot"
        );
        SlowCreate { stream, body }
    }

    /// Sends the body; returns the response's status code.
    fn finish(mut self) -> u16 {
        self.stream
            .get_mut()
            .write_all(self.body.as_bytes())
            .unwrap();
        read_head(&mut self.stream).0
    }
}

/// Reads a status line and headers (lower-cased names).
fn read_head(stream: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    stream.read_line(&mut line).unwrap();
    let status = line.split(' ').nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        stream.read_line(&mut line).unwrap();
        match line.trim_end().split_once(": ") {
            Some((name, value)) => headers.push((name.to_lowercase(), value.to_owned())),
            None => return (status, headers),
        }
    }
}

/// One GET on a fresh connection: status, headers and body.
fn get(dc: &DevClusterHandle, path: &str) -> (u16, Vec<(String, String)>, serde_json::Value) {
    let mut stream = TcpStream::connect(dc.addr()).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        dc.addr(),
        dc.admin_token()
    )
    .unwrap();
    let mut stream = BufReader::new(stream);
    let (status, headers) = read_head(&mut stream);
    let mut body = String::new();
    stream.read_to_string(&mut body).unwrap();
    (status, headers, serde_json::from_str(&body).unwrap())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

async fn limited_to_one() -> DevClusterHandle {
    DevCluster::start(Config {
        max_requests_inflight: Some(1),
        ..Config::plain_http()
    })
    .await
    .unwrap()
}

/// A kube client without kube's own retry, so a 429 reaches the caller.
fn client_without_retry(dc: &DevClusterHandle) -> kube::Client {
    let mut config = dc.kube_config().unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_max_inflight_get_429_with_retry_after_and_a_status() {
    let dc = limited_to_one().await;
    let held = SlowCreate::start(&dc, "slow");

    let (status, headers, body) = get(&dc, "/api/v1/namespaces/default/configmaps");
    assert_eq!(status, 429);
    assert_eq!(header(&headers, "retry-after"), Some("1"));
    assert_eq!(
        body,
        serde_json::json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "Too many requests, please try again later.",
            "reason": "TooManyRequests",
            "details": {"retryAfterSeconds": 1},
            "code": 429,
        })
    );

    let configmaps: Api<ConfigMap> = Api::default_namespaced(client_without_retry(&dc));
    match configmaps.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
        }
        other => panic!("expected a 429 from kube, got {other:?}"),
    }

    assert_eq!(held.finish(), 201, "the request in flight completes");
    assert_eq!(
        dc.request_count("list", "configmaps"),
        0,
        "refused requests are not served"
    );
    let (status, _, _) = get(&dc, "/api/v1/namespaces/default/configmaps/slow");
    assert_eq!(status, 200, "the slot is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_do_not_count_towards_max_inflight() {
    let dc = limited_to_one().await;
    let configmaps: Api<ConfigMap> = Api::default_namespaced(client_without_retry(&dc));
    let watch = configmaps
        .watch(&WatchParams::default(), "0")
        .await
        .expect("a watch starts while no request is in flight");
    let held = SlowCreate::start(&dc, "while-watching");
    let another = configmaps
        .watch(&WatchParams::default(), "0")
        .await
        .expect("a watch starts while the one slot is taken");
    assert_eq!(held.finish(), 201);
    drop((watch, another));
}

#[tokio::test]
async fn there_is_no_limit_by_default() {
    assert_eq!(Config::default().max_requests_inflight, None);
}
