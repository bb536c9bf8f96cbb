//! Shared test fixtures: a lab CA and server certificate, a recording handler, and a
//! server started on 127.0.0.1:0.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pec_smtp::{Envelope, Handler, Mode, Reply, ServerConfig, SessionInfo, serve};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Pki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let cert = params.signed_by(&key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

/// One message as the handler received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub session: SessionInfo,
    pub envelope: Envelope,
    pub message: Vec<u8>,
}

/// Accepts user `alice` / `secret` (identity alice@example.it); refuses recipients whose
/// local part is `refused` (`550`) or `busy` (`450`), and with `451` a message holding
/// `X-Test: tempfail`; records every message it takes.
#[derive(Default)]
pub struct Recorder {
    pub messages: Mutex<Vec<Received>>,
}

impl Handler for Recorder {
    async fn authenticate(
        &self,
        _session: &SessionInfo,
        user: &str,
        password: &str,
    ) -> Result<Option<String>, Reply> {
        if user == "unavailable" {
            return Err(Reply::new(454, "4.7.0", "Try again later"));
        }
        Ok((user == "alice" && password == "secret").then(|| "alice@example.it".to_string()))
    }

    async fn mail_from(&self, _session: &SessionInfo, _from: &str) -> Result<(), Reply> {
        Ok(())
    }

    async fn rcpt_to(&self, _session: &SessionInfo, _from: &str, to: &str) -> Result<(), Reply> {
        if to.starts_with("refused@") {
            Err(Reply::new(550, "5.1.1", "No such user here"))
        } else if to.starts_with("busy@") {
            Err(Reply::new(450, "4.2.1", "Mailbox busy, try later"))
        } else {
            Ok(())
        }
    }

    async fn data(&self, session: &SessionInfo, envelope: Envelope, message: Vec<u8>) -> Reply {
        if message.windows(17).any(|w| w == b"X-Test: tempfail\r") {
            return Reply::new(451, "4.3.0", "Try this message later");
        }
        self.messages.lock().unwrap().push(Received {
            session: session.clone(),
            envelope,
            message,
        });
        Reply::ok("Message accepted")
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub handler: Arc<Recorder>,
    pub pki: Pki,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), pec_smtp::Error>>>,
}

impl TestServer {
    pub fn received(&self) -> Vec<Received> {
        self.handler.messages.lock().unwrap().clone()
    }

    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

pub fn config(pki: &Pki) -> ServerConfig {
    let mut config = ServerConfig::new("mx.test.invalid");
    config.tls =
        Some(pec_net::tls::server_config(pki.cert_pem.as_bytes(), pki.key_pem.as_bytes()).unwrap());
    config.auth_failure_delay = Duration::from_millis(10);
    config.connections.shutdown_grace = Duration::from_secs(2);
    config
}

pub async fn start(mode: Mode, tweak: impl FnOnce(&mut ServerConfig)) -> TestServer {
    let pki = pki();
    let mut config = config(&pki);
    tweak(&mut config);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handler = Arc::new(Recorder::default());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        mode,
        Arc::new(config),
        Arc::clone(&handler),
        async move {
            let _ = stopped.await;
        },
    ));
    TestServer {
        addr,
        handler,
        pki,
        stop: Some(stop),
        task: Some(task),
    }
}

pub trait RawIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> RawIo for T {}

/// A raw SMTP client for the protocol-edge tests, over plaintext or implicit TLS.
pub struct Raw {
    pub stream: BufReader<Box<dyn RawIo>>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.unwrap();
        Raw {
            stream: BufReader::new(Box::new(stream)),
        }
    }

    /// Connect with implicit TLS, trusting the test CA.
    pub async fn connect_tls(addr: SocketAddr, ca_pem: &str) -> Raw {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let config = pec_smtp::client_tls_config(ca_pem.as_bytes()).unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .unwrap();
        Raw {
            stream: BufReader::new(Box::new(tls)),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let w = self.stream.get_mut();
        w.write_all(bytes).await.unwrap();
        w.flush().await.unwrap();
    }

    /// One whole reply (all its lines), or "" at EOF.
    pub async fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(Duration::from_secs(10), self.stream.read_line(&mut line))
                .await
                .expect("reply timeout")
                .unwrap_or(0);
            if n == 0 {
                return all;
            }
            all.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return all;
            }
        }
    }

    pub async fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    /// True when the server closed the connection.
    pub async fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(
            tokio::time::timeout(Duration::from_secs(10), self.stream.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Run a Python script (python3 must exist: tests fail, not skip, without it) with the
/// given arguments; returns stdout, panics with stderr on failure.
pub async fn python(script: &str, args: &[String]) -> String {
    let script = script.to_string();
    let args = args.to_vec();
    tokio::task::spawn_blocking(move || {
        let out = Command::new("python3")
            .arg("-c")
            .arg(&script)
            .args(&args)
            .output()
            .expect("python3 is required for these tests");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "python failed:\n{stdout}\n{stderr}");
        stdout
    })
    .await
    .unwrap()
}
