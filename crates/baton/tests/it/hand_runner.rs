//! A runner the test drives by hand: it speaks the runner protocol itself, so it can do what a
//! real runner never would — receive an assignment and act as if it never had, report on
//! another runner's task, say a forged hello, or stop reading its stream.

use std::time::Duration;

use baton_proto::v1::runner_client::RunnerClient;
use baton_proto::v1::runner_message::Msg;
use baton_proto::v1::server_message::Msg as In;
use baton_proto::v1::{Assignment, Heartbeat, Hello, RegisterRequest, RunnerMessage, ServerMessage, TaskRef};
use baton_testkit::Client;
use tokio::sync::mpsc;
use tonic::Streaming;
use tonic::transport::Endpoint;

/// One stream of a runner the test drives by hand.
pub struct Stream {
    pub tx: mpsc::Sender<RunnerMessage>,
    pub inbound: Streaming<ServerMessage>,
}

impl Stream {
    /// The next message from the server (panics after 10 s).
    pub async fn next(&mut self) -> In {
        let m = tokio::time::timeout(Duration::from_secs(10), self.inbound.message())
            .await
            .expect("the server said nothing for 10 s")
            .expect("the stream broke")
            .expect("the stream ended");
        m.msg.expect("an empty server message")
    }

    /// The next assignment, skipping welcomes and acknowledgements.
    pub async fn assignment(&mut self) -> Assignment {
        loop {
            match self.next().await {
                In::Assign(a) => return a,
                In::Welcome(_) | In::Ack(_) => {}
                other => panic!("expected an assignment, got {other:?}"),
            }
        }
    }

    /// The next message other than an acknowledgement.
    pub async fn next_not_ack(&mut self) -> In {
        loop {
            match self.next().await {
                In::Ack(_) => {}
                other => return other,
            }
        }
    }

    pub async fn send(&self, msg: Msg) {
        self.tx.send(RunnerMessage { msg: Some(msg) }).await.unwrap();
    }
}

/// A registered runner identity.
pub struct HandRunner {
    pub url: String,
    pub id: i64,
    pub secret: String,
    /// The labels it says hello with.
    pub labels: Vec<String>,
}

impl HandRunner {
    /// Registers `name` with the labels it asks for, under a fresh token without limits.
    pub async fn register(c: &Client, url: String, name: &str, labels: &[&str]) -> HandRunner {
        let token = c.registration_token().await;
        let labels: Vec<String> = labels.iter().map(|l| l.to_string()).collect();
        let mut client = RunnerClient::connect(url.clone()).await.unwrap();
        let req =
            RegisterRequest { token, name: name.into(), labels: labels.clone(), capacity: 1, version: "0.1.0".into() };
        let r = client.register(req).await.unwrap().into_inner();
        HandRunner { url, id: r.runner_id, secret: r.secret, labels }
    }

    /// The hello a well-behaved runner of capacity 1 says.
    pub fn hello(&self, running: Vec<TaskRef>, resumed: bool) -> Hello {
        Hello {
            protocol_version: baton_proto::RUNNER_PROTOCOL_VERSION,
            version: "0.1.0".into(),
            labels: self.labels.clone(),
            capacity: 1,
            running,
            resumed,
        }
    }

    /// Opens a stream saying hello with `running` and `resumed`, and waits for the welcome.
    pub async fn attach(&self, running: Vec<TaskRef>, resumed: bool) -> Stream {
        let mut s =
            self.open(self.hello(running, resumed), Endpoint::from_shared(self.url.clone()).unwrap()).await.unwrap();
        assert!(matches!(s.next().await, In::Welcome(_)), "a stream opens with a welcome");
        s
    }

    /// Opens a stream over `endpoint` saying `hello`, without waiting for anything more. While
    /// the stream lives, heartbeats keep the runner's lease.
    pub async fn open(&self, hello: Hello, endpoint: Endpoint) -> Result<Stream, tonic::Status> {
        let (tx, rx) = mpsc::channel(64);
        tx.send(RunnerMessage { msg: Some(Msg::Hello(hello)) }).await.unwrap();
        let mut req = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
        req.metadata_mut().insert("x-baton-runner-id", self.id.to_string().parse().unwrap());
        req.metadata_mut().insert("authorization", format!("Bearer {}", self.secret).parse().unwrap());
        let mut client = RunnerClient::new(endpoint.connect().await.unwrap());
        let inbound = client.attach(req).await?.into_inner();
        let weak = tx.downgrade();
        tokio::spawn(async move {
            while let Some(tx) = weak.upgrade() {
                let _ = tx.send(RunnerMessage { msg: Some(Msg::Heartbeat(Heartbeat {})) }).await;
                drop(tx);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Ok(Stream { tx, inbound })
    }
}
