//! Locks: exclusive, token-checked, expiring.

use std::time::Duration;

use baton_coord::Lock;

use crate::Backend;

both!(
    a_lock_is_exclusive_until_unlocked,
    unlock_and_extend_check_the_token,
    an_extended_lock_outlives_its_first_ttl,
    locks_expire_and_the_old_holder_cannot_touch_the_new_one,
);

const LONG: Duration = Duration::from_secs(30);

async fn a_lock_is_exclusive_until_unlocked(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let held = one.try_lock("sweep", LONG).await.unwrap().expect("free lock");
    assert_eq!(held.name, "sweep");
    assert!(two.try_lock("sweep", LONG).await.unwrap().is_none());
    assert!(one.try_lock("sweep", LONG).await.unwrap().is_none(), "not reentrant");
    // Other names are independent.
    let other = two.try_lock("other", LONG).await.unwrap().expect("another name is free");
    assert_ne!(other.token, held.token);
    one.unlock(&held).await.unwrap();
    let again = two.try_lock("sweep", LONG).await.unwrap().expect("free after unlock");
    assert_ne!(again.token, held.token, "every holder gets its own token");
    // Unlocking twice, or a lock nobody holds, is fine.
    one.unlock(&held).await.unwrap();
    one.unlock(&Lock { name: "never".into(), token: "x".into() }).await.unwrap();
}

async fn unlock_and_extend_check_the_token(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let held = one.try_lock("l", LONG).await.unwrap().unwrap();
    let forged = Lock { name: "l".into(), token: "not-the-token".into() };
    two.unlock(&forged).await.unwrap();
    assert!(two.try_lock("l", LONG).await.unwrap().is_none(), "a wrong token does not unlock");
    assert!(!two.extend(&forged, LONG).await.unwrap(), "a wrong token does not extend");
    assert!(one.extend(&held, LONG).await.unwrap());
    one.unlock(&held).await.unwrap();
    assert!(!one.extend(&held, LONG).await.unwrap(), "an unlocked lock cannot be extended");
}

async fn an_extended_lock_outlives_its_first_ttl(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let held = one.try_lock("l", Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(one.extend(&held, Duration::from_secs(10)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(two.try_lock("l", LONG).await.unwrap().is_none());
    assert!(one.extend(&held, LONG).await.unwrap());
}

async fn locks_expire_and_the_old_holder_cannot_touch_the_new_one(b: Backend) {
    let (one, two) = (b.node().await, b.node().await);
    let old = one.try_lock("l", Duration::from_millis(300)).await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!one.extend(&old, LONG).await.unwrap(), "an expired lock cannot be extended");
    let new = two.try_lock("l", LONG).await.unwrap().expect("free after expiry");
    assert!(!one.extend(&old, LONG).await.unwrap());
    one.unlock(&old).await.unwrap();
    assert!(one.try_lock("l", LONG).await.unwrap().is_none(), "the old token released nothing");
    assert!(two.extend(&new, LONG).await.unwrap());
}
