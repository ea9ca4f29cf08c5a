//! Outgoing email: over SMTP when a server is configured, otherwise written
//! to the log, so a local run needs nothing else. Messages never carry a
//! password, only links.

use chrono::{DateTime, Utc};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
};

use crate::domain::{DisplayName, Email};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid SMTP URL: {0}")]
    Url(#[source] lettre::transport::smtp::Error),
    #[error("invalid sender address {0:?}")]
    From(String),
    #[error("cannot build the message: {0}")]
    Build(#[from] lettre::error::Error),
    #[error("invalid recipient address: {0}")]
    Address(#[from] lettre::address::AddressError),
    #[error("SMTP delivery failed: {0}")]
    Send(#[source] lettre::transport::smtp::Error),
}

#[derive(Clone)]
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    from: Mailbox,
    public_url: String,
}

/// An invitation to send.
pub struct Invitation<'a> {
    pub to: &'a Email,
    pub name: &'a DisplayName,
    pub org: &'a str,
    pub token: &'a str,
    pub expires_at: DateTime<Utc>,
}

/// A welcome for a user created with a password by an administrator.
pub struct Welcome<'a> {
    pub to: &'a Email,
    pub name: &'a DisplayName,
    pub org: &'a str,
    pub org_slug: &'a str,
}

impl Mailer {
    /// `smtp_url` as lettre reads it (`smtp://host:port`, `smtps://user:pass@host`);
    /// `None` logs messages instead of sending them.
    pub fn new(smtp_url: Option<&str>, from: &str, public_url: &str) -> Result<Self, MailError> {
        let transport = smtp_url
            .map(|url| AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map(|b| b.build()))
            .transpose()
            .map_err(MailError::Url)?;
        let from = from.parse().map_err(|_| MailError::From(from.to_owned()))?;
        Ok(Self {
            transport,
            from,
            public_url: public_url.trim_end_matches('/').to_owned(),
        })
    }

    /// The link an invitee opens to accept.
    pub fn invite_link(&self, token: &str) -> String {
        format!("{}/accept-invite?token={token}", self.public_url)
    }

    pub async fn send_invitation(&self, invitation: Invitation<'_>) -> Result<(), MailError> {
        let link = self.invite_link(invitation.token);
        let subject = format!("You are invited to {} on Roster", invitation.org);
        let body = format!(
            "Hello {name},\n\n\
             You have been invited to join {org}. To accept, open this link and choose a password:\n\n\
             {link}\n\n\
             The link works once and expires at {expires} (UTC).\n",
            name = invitation.name.as_str(),
            org = invitation.org,
            expires = invitation.expires_at.format("%Y-%m-%d %H:%M"),
        );
        self.send(invitation.to, subject, body).await
    }

    pub async fn send_welcome(&self, welcome: Welcome<'_>) -> Result<(), MailError> {
        let subject = format!("Welcome to {} on Roster", welcome.org);
        let body = format!(
            "Hello {name},\n\n\
             An account was created for you in {org}. Sign in here:\n\n\
             {url}/sign-in?org={slug}\n\n\
             Your administrator will tell you your first password; it is never sent by email.\n",
            name = welcome.name.as_str(),
            org = welcome.org,
            url = self.public_url,
            slug = welcome.org_slug,
        );
        self.send(welcome.to, subject, body).await
    }

    async fn send(&self, to: &Email, subject: String, body: String) -> Result<(), MailError> {
        let Some(transport) = &self.transport else {
            tracing::info!(to = to.as_str(), %subject, %body, "email (no SMTP server configured)");
            return Ok(());
        };
        let message = Message::builder()
            .from(self.from.clone())
            .to(Mailbox::new(None, to.as_str().parse()?))
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?;
        transport.send(message).await.map_err(MailError::Send)?;
        Ok(())
    }
}
