//! argon2id hashing off the async runtime, on a fixed set of threads (one
//! per core), so a login flood cannot starve other RPCs. Fixed threads also
//! bound memory: each hash works in 19 MiB, which the allocator keeps in the
//! arena of the thread that ran it; on tokio's many blocking threads that
//! grew to hundreds of MB under a login flood. The threads run at a lower
//! priority than the runtime's, so other RPCs go first on a busy machine.
//!
//! The queue of waiting hashes has no bound of its own: each waiting hash
//! is an RPC in flight, and those are bounded by the server's concurrency
//! limit (`ROSTER_MAX_CONCURRENT_REQUESTS`, with load shedding past it), so
//! at most that many hashes wait, each costing a few hundred bytes until
//! its turn.

use std::sync::{Arc, Mutex, PoisonError, mpsc};

use argon2::{
    Algorithm, Argon2, Params, PasswordHasher as _, Version,
    password_hash::{PasswordHash, PasswordVerifier, SaltString, rand_core::OsRng},
};
use tokio::sync::oneshot;

use crate::{
    domain::Password,
    error::{Error, Result},
};

/// A random password of 20 letters and digits (about 119 bits), for a
/// password the server makes up and shows once.
pub fn generate_password() -> String {
    use rand::{Rng, distr::Alphanumeric};
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// How expensive a new hash is. Verification always uses the parameters
/// stored in the hash itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashCost {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    Owasp,
    /// Cheap parameters, only for tests: never use in production.
    InsecureFast,
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon2: Argon2<'static>,
    /// Work for the hashing threads; they end when every clone is dropped.
    jobs: mpsc::Sender<Job>,
    /// A hash verified when the user does not exist, so an unknown login takes
    /// as long as a wrong password and timing reveals nothing.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(cost: HashCost) -> Result<Self> {
        let params = match cost {
            HashCost::Owasp => Params::new(19 * 1024, 2, 1, None),
            HashCost::InsecureFast => Params::new(8, 1, 1, None),
        }
        .map_err(Error::internal)?;
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get());
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon2
            .hash_password(b"roster-dummy-password", &salt)
            .map_err(Error::internal)?
            .to_string();
        Ok(Self {
            argon2,
            jobs: spawn_hashing_threads(parallelism).map_err(Error::internal)?,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a password into a PHC string (algorithm, parameters, salt, hash).
    pub async fn hash(&self, password: &Password) -> Result<String> {
        let argon2 = self.argon2.clone();
        let password = password.expose().to_owned();
        self.run("password.hash", move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(Error::internal)
        })
        .await
    }

    /// Whether `password` matches `phc`; `None` checks against a dummy hash and
    /// returns false, taking the same time.
    pub async fn verify(&self, password: &str, phc: Option<&str>) -> Result<bool> {
        let known = phc.is_some();
        let phc = phc.map_or_else(|| self.dummy_hash.to_string(), str::to_owned);
        let password = password.to_owned();
        let matches = self
            .run("password.verify", move || {
                let parsed = PasswordHash::new(&phc).map_err(Error::internal)?;
                Ok(Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on a hashing thread, in a child span `name` of the
    /// caller's that covers the wait for a thread too.
    async fn run<T: Send + 'static>(
        &self,
        name: &'static str,
        work: impl FnOnce() -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let span = tracing::info_span!("argon2id", otel.name = name);
        let (done, result) = oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(span.in_scope(work));
            }))
            .map_err(|_| Error::internal(std::io::Error::other("the hashing threads are gone")))?;
        result.await.map_err(Error::internal)?
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Starts `count` threads that run jobs in turn from one queue; fails if
/// one cannot start, as queued hashes would then wait forever.
fn spawn_hashing_threads(count: usize) -> std::io::Result<mpsc::Sender<Job>> {
    let (sender, receiver) = mpsc::channel::<Job>();
    let receiver = Arc::new(Mutex::new(receiver));
    for n in 0..count {
        let receiver = receiver.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{n}"))
            .spawn(move || {
                lower_priority();
                loop {
                    let next = receiver
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .recv();
                    match next {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })?;
    }
    Ok(sender)
}

/// Gives the calling thread a lower scheduling priority (nice 10), so that
/// when hashes and other RPCs want the same cores, the RPCs run first: a
/// login flood slows logins, not everything else. Alone, hashes still get
/// every core.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: setpriority reads no memory of ours; on Linux, PRIO_PROCESS
    // with 0 names the calling thread alone.
    let failed = unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) } != 0;
    if failed {
        tracing::warn!(
            error = %std::io::Error::last_os_error(),
            "cannot lower the priority of a hashing thread"
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_what_it_hashed() {
        let hasher = PasswordHasher::new(HashCost::InsecureFast).unwrap();
        let pw = Password::parse("correct horse battery", 8).unwrap();
        let phc = hasher.hash(&pw).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            hasher
                .verify("correct horse battery", Some(&phc))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery", Some(&phc))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("roster-dummy-password", None).await.unwrap());
    }
}
