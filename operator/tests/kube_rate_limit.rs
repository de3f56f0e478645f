//! The API server's `429 Retry-After` through real kube clients: devcluster limited to one
//! request in flight, that one slot held by a create whose body has not arrived yet.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ListParams};
use kuvert_devcluster::{Config, DevCluster, DevClusterHandle};
use kuvert_operator::run::RunArgs;

/// A create holding devcluster's only slot from `start` to `finish`: the server answers
/// `Expect: 100-continue` when its handler reads the body, after it took the slot.
struct SlotHolder(BufReader<TcpStream>);

const BODY: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"slot"}}"#;

impl SlotHolder {
    fn start(dc: &DevClusterHandle) -> Self {
        let mut stream = TcpStream::connect(dc.addr()).unwrap();
        write!(
            stream,
            "POST /api/v1/namespaces/default/configmaps HTTP/1.1\r\nHost: {}\r\n\
             Authorization: Bearer {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nExpect: 100-continue\r\n\r\n",
            dc.addr(),
            dc.admin_token(),
            BODY.len()
        )
        .unwrap();
        let mut holder = SlotHolder(BufReader::new(stream));
        assert_eq!(holder.status(), 100, "the create holds the slot");
        holder
    }

    fn finish(mut self) {
        self.0.get_mut().write_all(BODY.as_bytes()).unwrap();
        assert_eq!(self.status(), 201);
    }

    /// Reads a response head; returns its status code.
    fn status(&mut self) -> u16 {
        let mut line = String::new();
        self.0.read_line(&mut line).unwrap();
        let status = line.split(' ').nth(1).unwrap().parse().unwrap();
        while line != "\r\n" {
            line.clear();
            self.0.read_line(&mut line).unwrap();
        }
        status
    }
}

async fn limited_to_one() -> DevClusterHandle {
    DevCluster::start(Config {
        max_requests_inflight: Some(1),
        ..Config::plain_http()
    })
    .await
    .unwrap()
}

#[derive(Parser)]
struct Kuvert {
    #[command(flatten)]
    run: RunArgs,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_429_the_next_request_waits_out_retry_after() {
    let dc = limited_to_one().await;
    let mut config = dc.kube_config().unwrap();
    config.default_retry = false;
    let client = kube::client::ClientBuilder::try_from(config)
        .unwrap()
        .with_layer(&kuvert_operator::ratelimit::layer(0.0, 1))
        .build();
    let configmaps: Api<ConfigMap> = Api::default_namespaced(client);

    let holder = SlotHolder::start(&dc);
    let start = Instant::now();
    match configmaps.list(&ListParams::default()).await {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 429, "returned unchanged"),
        other => panic!("expected a 429, got {other:?}"),
    }
    holder.finish();

    configmaps
        .list(&ListParams::default())
        .await
        .expect("served once the hold is over");
    let took = start.elapsed();
    assert!(
        took >= Duration::from_secs(1),
        "the next request waited out Retry-After: 1 ({took:?})"
    );
    assert_eq!(
        dc.request_count("list", "configmaps"),
        1,
        "the layer itself retries nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kuverts_client_rides_out_429s_without_errors_reaching_callers() {
    let dc = limited_to_one().await;
    let args = Kuvert::parse_from(["kuvert"]).run;
    assert_eq!(args.kube_qps, 0.0, "no fixed client-side rate by default");
    let client = kuvert_operator::run::client(dc.kube_config().unwrap(), &args).unwrap();
    let configmaps: Api<ConfigMap> = Api::default_namespaced(client);

    let holder = SlotHolder::start(&dc);
    let lists: Vec<_> = (0..20)
        .map(|_| {
            let configmaps = configmaps.clone();
            tokio::spawn(async move { configmaps.list(&ListParams::default()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    holder.finish();

    for list in lists {
        list.await
            .unwrap()
            .expect("every request is served in the end");
    }
    assert_eq!(dc.request_count("list", "configmaps"), 20);
}
