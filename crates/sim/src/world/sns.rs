//! SNS: approval notices, recorded and handed to the simulated approvers.

use super::*;
use async_trait::async_trait;

#[async_trait]
impl Notifier for World {
    async fn approval_requested(&self, notice: &ApprovalNotice) -> Result<(), PortError> {
        {
            let mut st = self.st();
            self.enter(&mut st, "sns", "Publish")?;
            st.notices.push(notice.clone());
        }
        if let Some(tx) = self
            .notices_tx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            let _ = tx.send(notice.clone());
        }
        Ok(())
    }

    async fn page(&self, notice: &RunNotice) -> Result<(), PortError> {
        let mut st = self.st();
        self.enter(&mut st, "sns", "Publish")?;
        if notice.is_page() {
            st.counters.pages_sent += 1;
        } else {
            st.counters.notices_sent += 1;
        }
        st.pages.push(notice.clone());
        Ok(())
    }
}
