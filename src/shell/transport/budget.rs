//! Cooperative fairness for loops that may never wait.

use futures_lite::future;

/// Steps a pump may take without waiting before it lets other tasks run
/// (reads and writes that never block would otherwise hold the executor).
#[derive(Default)]
pub struct Budget(u32);

impl Budget {
    const STEPS: u32 = 32;

    pub async fn spend(&mut self) {
        self.0 += 1;
        if self.0 >= Self::STEPS {
            self.0 = 0;
            future::yield_now().await;
        }
    }
}
