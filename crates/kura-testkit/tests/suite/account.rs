//! Account security: mail over a real SMTP conversation (Debian's `python3-aiosmtpd` as the
//! sink, Python's own `email` package as the independent parser).

use kura_testkit::{test_config, Backend, TestServer};
use serde_json::Value;
use std::process::{Child, Command, Stdio};

/// An SMTP sink on a free loopback port that stores what it receives in a Maildir.
struct Sink {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
}

impl Sink {
    fn start_on(port: u16, dir: &std::path::Path) -> Sink {
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd (apt-get install python3-aiosmtpd)");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Sink {
            child,
            port,
            dir: dir.to_path_buf(),
        }
    }

    fn start() -> Sink {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = kura_testkit::temp_path("maildir");
        Sink::start_on(port, &dir)
    }

    /// Every message received, decoded by Python's `email` package.
    fn messages(&self) -> Vec<Value> {
        let script = r#"
import email, json, mailbox, sys
from email import policy
out = []
for key, msg in mailbox.Maildir(sys.argv[1], create=False).items():
    m = email.message_from_bytes(msg.as_bytes(), policy=policy.default)
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
                "body": m.get_body(("plain",)).get_content()})
print(json.dumps(out, ensure_ascii=False))
"#;
        if !self.dir.join("new").exists() {
            return Vec::new();
        }
        let out = Command::new("/usr/bin/python3")
            .args(["-c", script])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..100 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the SMTP sink did not receive {n} mails: {:?}",
            self.messages()
        );
    }

    fn stop(mut self) -> (u16, std::path::PathBuf) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        (self.port, self.dir.clone())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_out_over_smtp_and_failures_are_retried() {
    let sink = Sink::start();
    let mut cfg = test_config(Backend::Sqlite);
    cfg.smtp_url = Some(format!("smtp://127.0.0.1:{}", sink.port));
    cfg.mail_from = "Kura 蔵 <kura@kura.example.jp>".into();
    let s = TestServer::start_with(cfg, Backend::Sqlite).await;

    // The invitation of a new tenant's contract admin (Japanese by default).
    let t = s.create_tenant("mailer").await;
    let got = sink.wait_for(1).await;
    let m = &got[0];
    assert_eq!(m["to"], t.admin_email.as_str());
    assert!(
        m["from"].as_str().unwrap().contains("kura@kura.example.jp"),
        "{m}"
    );
    assert!(m["subject"].as_str().unwrap().contains("招待"), "{m}");
    assert!(m["body"].as_str().unwrap().contains("/invite/kin_"), "{m}");
    let mut tx = s.services.store.system_read().await.unwrap();
    let mails = kura_store::outbox::list(&mut tx, 10).await.unwrap();
    let d = kura_store::outbox::delivery(&mut tx, &mails[0].id)
        .await
        .unwrap();
    assert!(d.sent_at.is_some() && d.attempts == 1, "{d:?}");
    drop(tx);

    // The SMTP server is down: the mail stays queued with its error, and goes out once the
    // server is back and the retry time has come.
    let (port, dir) = sink.stop();
    let (st, _) = s
        .post(
            "/api/v1/users",
            &t.admin_token,
            serde_json::json!({ "email": "late@mailer.example.jp", "role": "member" }),
        )
        .await;
    assert_eq!(st, kura_testkit::StatusCode::CREATED);
    let mut waited = 0;
    let late = loop {
        let mut tx = s.services.store.system_read().await.unwrap();
        let mails = kura_store::outbox::list(&mut tx, 10).await.unwrap();
        let late = mails
            .iter()
            .find(|m| m.to == "late@mailer.example.jp")
            .unwrap()
            .clone();
        let d = kura_store::outbox::delivery(&mut tx, &late.id)
            .await
            .unwrap();
        if d.last_error.is_some() {
            assert!(d.sent_at.is_none());
            break late;
        }
        assert!(waited < 100, "no failed attempt recorded: {d:?}");
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let sink = Sink::start_on(port, &dir);
    s.clock.advance_secs(61);
    let got = sink.wait_for(2).await;
    assert!(got.iter().any(|m| m["to"] == "late@mailer.example.jp"));
    let mut tx = s.services.store.system_read().await.unwrap();
    let d = kura_store::outbox::delivery(&mut tx, &late.id)
        .await
        .unwrap();
    assert!(d.sent_at.is_some() && d.attempts >= 2, "{d:?}");
    drop(tx);
    sink.stop();
    s.stop().await;
}
