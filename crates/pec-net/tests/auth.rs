//! The password check: a bounded pool, the same work for unknown users, the growing
//! per-client penalty (on tokio's paused clock: no real waiting).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use pec_net::{AuthLimits, Authenticator, hash_password};
use tokio::time::Instant;

/// A hash with small parameters, so that fifty verifications take little time.
fn cheap_hash(password: &str) -> String {
    let params = Params::new(1024, 2, 1, None).unwrap();
    let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .unwrap()
        .to_string()
}

fn client(n: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, n])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_wrong_logins_never_run_more_than_the_workers() {
    let auth = Arc::new(Authenticator::new(AuthLimits {
        workers: 2,
        ..AuthLimits::default()
    }));
    let stored: Arc<str> = cheap_hash("segreta").into();
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..50 {
        let (auth, stored) = (auth.clone(), stored.clone());
        attempts.spawn(async move { auth.verify(client(n), "sbagliata", Some(&stored)).await });
    }
    while let Some(matched) = attempts.join_next().await {
        assert!(!matched.unwrap());
    }
    let stats = auth.stats();
    assert_eq!(stats.verifications, 50);
    assert!(stats.peak <= 2, "{stats:?}");
    assert_eq!(stats.running, 0);
    assert!(
        (1..=2).contains(&stats.kept_buffers),
        "work memory kept for the next logins, one per worker at most: {stats:?}"
    );
}

#[tokio::test]
async fn an_unknown_user_is_verified_like_a_wrong_password() {
    let auth = Authenticator::new(AuthLimits::default());
    let stored = hash_password("segreta").unwrap();
    assert!(!auth.verify(client(1), "segreta", None).await);
    assert_eq!(auth.stats().verifications, 1, "the dummy hash was verified");
    assert!(!auth.verify(client(2), "sbagliata", Some(&stored)).await);
    assert_eq!(auth.stats().verifications, 2);
    assert!(auth.verify(client(3), "segreta", Some(&stored)).await);
    assert_eq!(auth.stats().verifications, 3);
}

/// Virtual seconds an attempt waited before its answer.
async fn timed(auth: &Authenticator, from: IpAddr, password: &str, stored: &str) -> (bool, u64) {
    let start = Instant::now();
    let matched = auth.verify(from, password, Some(stored)).await;
    (matched, start.elapsed().as_secs())
}

#[tokio::test(start_paused = true)]
async fn the_penalty_grows_per_client_and_a_success_or_time_resets_it() {
    let auth = Authenticator::new(AuthLimits::default());
    let stored = cheap_hash("segreta");
    let (attacker, user) = (client(66), client(7));

    let mut waits = Vec::new();
    for _ in 0..6 {
        waits.push(timed(&auth, attacker, "guess", &stored).await);
    }
    let expected = [0, 2, 4, 8, 15, 15].map(|w| (false, w));
    assert_eq!(waits, expected);

    // A success from the attacker's address (its own account) starts it afresh.
    assert_eq!(timed(&auth, attacker, "segreta", &stored).await, (true, 15));
    assert_eq!(timed(&auth, attacker, "guess", &stored).await, (false, 0));
    assert_eq!(timed(&auth, attacker, "guess", &stored).await, (false, 2));

    // The rightful user elsewhere is not slowed down by the attacker, even after failing once.
    assert_eq!(timed(&auth, user, "typo", &stored).await, (false, 0));
    assert_eq!(
        timed(&auth, user, "segreta", &stored).await,
        (true, 2),
        "its own failure only"
    );

    // Ten quiet minutes forget the failures.
    tokio::time::advance(Duration::from_secs(601)).await;
    assert_eq!(timed(&auth, attacker, "guess", &stored).await, (false, 0));
}

#[tokio::test(start_paused = true)]
async fn parallel_attempts_from_one_client_are_spaced_out() {
    let auth = Arc::new(Authenticator::new(AuthLimits::default()));
    let stored: Arc<str> = cheap_hash("segreta").into();
    assert!(!auth.verify(client(66), "guess", Some(&stored)).await);
    let start = Instant::now();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (auth, stored) = (auth.clone(), stored.clone());
        attempts.spawn(async move {
            auth.verify(client(66), "guess", Some(&stored)).await;
            start.elapsed().as_secs()
        });
    }
    let mut done = Vec::new();
    while let Some(at) = attempts.join_next().await {
        done.push(at.unwrap());
    }
    done.sort();
    // One attempt at a time, each at least 2 s after the one before.
    assert!(done.windows(2).all(|w| w[1] >= w[0] + 2), "{done:?}");
    assert!(done[0] >= 2, "{done:?}");
}

#[tokio::test(start_paused = true)]
async fn the_work_memory_is_kept_while_logins_come_and_released_when_idle() {
    let idle = Duration::from_secs(30);
    let auth = Authenticator::new(AuthLimits {
        workers: 2,
        memory_idle: idle,
        penalty: Duration::ZERO,
        ..AuthLimits::default()
    });
    let stored = cheap_hash("segreta");
    assert_eq!(
        auth.stats().kept_buffers,
        0,
        "nothing before the first login"
    );

    // A login every 20 s: each one comes before the memory has been idle for 30 s.
    for n in 0..4 {
        assert!(auth.verify(client(n), "segreta", Some(&stored)).await);
        assert!(!auth.verify(client(n), "sbagliata", Some(&stored)).await);
        assert!(
            !auth.verify(client(n), "segreta", None).await,
            "unknown user"
        );
        assert_eq!(
            auth.stats().kept_buffers,
            1,
            "login {n}: one buffer, reused"
        );
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert_eq!(
            auth.stats().kept_buffers,
            1,
            "20 s after login {n}: still kept"
        );
    }

    // Quiet past the idle period (on the paused clock: the release task's timer fires
    // first, and runs before time moves on to this sleep's end).
    tokio::time::sleep(idle).await;
    assert_eq!(auth.stats().kept_buffers, 0, "released once idle");

    // Logins again: memory taken again, verdicts unchanged.
    assert!(auth.verify(client(9), "segreta", Some(&stored)).await);
    assert_eq!(auth.stats().kept_buffers, 1);
    assert_eq!(auth.stats().verifications, 13);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn new_passwords_are_hashed_in_the_same_bounded_pool() {
    let auth = Arc::new(Authenticator::new(AuthLimits {
        workers: 1,
        ..AuthLimits::default()
    }));
    let mut hashes = tokio::task::JoinSet::new();
    for n in 0..4 {
        let auth = auth.clone();
        hashes.spawn(async move { auth.hash(&format!("nuova-{n}")).await });
    }
    let mut made = Vec::new();
    while let Some(h) = hashes.join_next().await {
        made.push(h.unwrap().unwrap());
    }
    assert_eq!(auth.stats().peak, 1, "one at a time: {:?}", auth.stats());
    assert_eq!(auth.stats().verifications, 0, "hashing is not a login");
    for h in &made {
        assert!(h.starts_with("$argon2id$"));
    }
    let stored = &made[0];
    let which = (0..4)
        .filter(|n| pec_net::verify_password(&format!("nuova-{n}"), stored))
        .count();
    assert_eq!(which, 1);
}

#[tokio::test(start_paused = true)]
async fn other_secrets_share_the_penalty_of_passwords() {
    let auth = Authenticator::new(AuthLimits::default());
    let stored = cheap_hash("segreta");
    let start = Instant::now();
    assert_eq!(auth.penalised(client(1), async { None::<u8> }).await, None);
    assert_eq!(
        start.elapsed().as_secs(),
        0,
        "a first failure waits nothing"
    );
    // Then a password from that client waits the penalty of the failed token...
    let (ok, waited) = timed(&auth, client(1), "segreta", &stored).await;
    assert!(ok);
    assert_eq!(waited, 2);
    // ...and, after a failed password, so does a token, which passes and resets it.
    assert!(!auth.verify(client(1), "sbagliata", Some(&stored)).await);
    let start = Instant::now();
    assert_eq!(auth.penalised(client(1), async { Some(7) }).await, Some(7));
    assert_eq!(start.elapsed().as_secs(), 2);
    let start = Instant::now();
    assert_eq!(auth.penalised(client(1), async { Some(7) }).await, Some(7));
    assert_eq!(start.elapsed().as_secs(), 0);
}
