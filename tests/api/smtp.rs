//! A minimal SMTP server inside the test: it accepts every message and keeps
//! it, so a test can read the email Roster sent.

use std::{sync::Arc, time::Duration};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::TcpListener,
    sync::{Mutex, Notify},
};

#[derive(Clone)]
pub struct SmtpSink {
    pub url: String,
    messages: Arc<Mutex<Vec<String>>>,
    arrived: Arc<Notify>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("smtp://{}", listener.local_addr().expect("addr"));
        let sink = Self {
            url,
            messages: Arc::default(),
            arrived: Arc::default(),
        };
        let accepting = sink.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let sink = accepting.clone();
                tokio::spawn(async move { sink.serve(stream).await });
            }
        });
        sink
    }

    async fn serve(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ready\r\n").await?;
        while let Some(line) = lines.next_line().await? {
            let command = line.to_ascii_uppercase();
            if command.starts_with("DATA") {
                write.write_all(b"354 go ahead\r\n").await?;
                let mut message = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    message.push_str(&line);
                    message.push('\n');
                }
                self.messages.lock().await.push(message);
                self.arrived.notify_waiters();
                write.write_all(b"250 stored\r\n").await?;
            } else if command.starts_with("QUIT") {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                write.write_all(b"250 ok\r\n").await?;
            }
        }
        Ok(())
    }

    /// Waits (up to 10 s) until `count` messages have arrived; returns them.
    pub async fn wait_for(&self, count: usize) -> Vec<String> {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.arrived.notified();
                {
                    let messages = self.messages.lock().await;
                    if messages.len() >= count {
                        return messages.clone();
                    }
                }
                notified.await;
            }
        })
        .await
        .expect("the email arrives")
    }
}

/// A message with its quoted-printable soft breaks and `=3D` undone: enough
/// for the ASCII texts Roster sends.
pub fn decoded(message: &str) -> String {
    message.replace("=\n", "").replace("=3D", "=")
}

/// The invitation token in an email's link.
pub fn invite_token(message: &str) -> String {
    let body = decoded(message);
    let start = body.find("token=").expect("a link with a token") + "token=".len();
    body[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect()
}
