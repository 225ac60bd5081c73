//! The seven upload operations of the data plane. An upload lives on the backend chosen at
//! create; the other calls find it by its id on whichever backend holds it.

use std::sync::Arc;
use std::time::SystemTime;

use super::{append, commit, status, UploadId, UploadRecord, UploadSession};
use crate::api::{
    AppendRequest, CommitUploadRequest, IngestRequest, ListUploadsRequest, PurgeUploadsRequest, UploadPage,
    UploadRequest, LIST_PAGE_LEN,
};
use crate::blocking::run_blocking;
use crate::error::{Error, Result};
use crate::ingest::Ingest;
use crate::metrics::operation_index;
use crate::plane::DataPlane;
use crate::results::{AbortedUpload, IngestResult, PurgedUploads, UploadStatus};
use crate::storage::Backend;

const APPEND_UPLOAD: usize = operation_index("append_upload");

impl DataPlane {
    /// Starts an upload on the backend the hints name; `expect` is checked again at commit.
    pub async fn create_upload(&self, request: &IngestRequest) -> Result<UploadStatus> {
        let backend = self.backend(request.backend_id())?;
        let record = UploadRecord::new(request.primary(), request.expect.clone(), SystemTime::now());
        run_blocking(move || {
            let id = UploadId::random()?;
            let updated_at = backend.create_upload(&id, &record)?;
            Ok(status(&id, backend.as_ref(), &record, updated_at))
        })
        .await
    }

    /// Starts an append: the upload is locked and its offset checked before the first byte is
    /// taken. Push chunks into it, then `finish` it for the upload's new status.
    pub async fn begin_append(&self, request: AppendRequest) -> Result<Ingest<UploadStatus>> {
        let mut timer = self.meter().start(APPEND_UPLOAD);
        let (id, backend, mut session) = self.locked_at(request).await.inspect_err(|e| timer.fail(e))?;
        let ingested = self.meter().ingested(backend.id());
        Ok(Ingest::spawn(self.runtime(), ingested, move |chunks, abandoned| {
            let appended = append(session.as_mut(), chunks, abandoned);
            session.release();
            let result = appended.map(|(record, updated_at)| status(&id, backend.as_ref(), &record, updated_at));
            timer.finish(&result);
            result
        }))
    }

    /// The upload an append names, locked, once its offset is checked.
    async fn locked_at(&self, request: AppendRequest) -> Result<(UploadId, Arc<dyn Backend>, Box<dyn UploadSession>)> {
        let id = UploadId::parse(&request.upload_id)?;
        let upload_id = id.to_string();
        let (backend, session) = self
            .locked(id.clone(), "appendUpload", move |session| match session.record().offset {
                current if current != request.offset => {
                    Err(Error::WrongOffset { upload_id, given: request.offset, current })
                }
                _ => Ok(()),
            })
            .await?;
        Ok((id, backend, session))
    }

    pub async fn upload_status(&self, request: &UploadRequest) -> Result<UploadStatus> {
        let id = UploadId::parse(&request.upload_id)?;
        let backends = self.backends_in_turn()?;
        run_blocking(move || {
            for backend in backends {
                if let Some((record, updated_at)) = backend.read_upload(&id)? {
                    return Ok(status(&id, backend.as_ref(), &record, updated_at));
                }
            }
            Err(id.not_found())
        })
        .await
    }

    /// Stores the upload's bytes as an object, as an ingest of them would, and removes the upload.
    pub async fn commit_upload(&self, request: &CommitUploadRequest) -> Result<IngestResult> {
        let id = UploadId::parse(&request.upload_id)?;
        let (backend, session) = self.locked(id, "commitUpload", |_| Ok(())).await?;
        let expect = request.expect.clone();
        run_blocking(move || commit(backend.as_ref(), session, &expect)).await
    }

    /// Removes an upload; one that is absent (whatever its id) is `aborted: false`, not an error.
    pub async fn abort_upload(&self, request: &UploadRequest) -> Result<AbortedUpload> {
        let upload_id = request.upload_id.clone();
        let backends = self.backends_in_turn()?;
        let Ok(id) = UploadId::parse(&upload_id) else { return Ok(AbortedUpload { upload_id, aborted: false }) };
        run_blocking(move || {
            for backend in backends {
                if backend.remove_upload(&id)? {
                    return Ok(AbortedUpload { upload_id, aborted: true });
                }
            }
            Ok(AbortedUpload { upload_id, aborted: false })
        })
        .await
    }

    /// One page of a backend's uploads (see [`ListUploadsRequest`]).
    pub async fn list_uploads(&self, request: &ListUploadsRequest) -> Result<UploadPage> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let request = request.clone();
        run_blocking(move || {
            let limit = request.limit.map_or(LIST_PAGE_LEN, |limit| (limit as usize).min(LIST_PAGE_LEN));
            let mut ids = backend.upload_ids()?;
            ids.sort();
            ids.retain(|id| request.after.as_deref().is_none_or(|after| id.as_str() > after));
            let mut page = UploadPage::default();
            for (looked, id) in ids.iter().enumerate() {
                if looked == limit {
                    page.next_after = Some(ids[looked - 1].to_string());
                    break;
                }
                // Gone since listed (committed, aborted): not listed.
                let Some((record, updated_at)) = backend.read_upload(id)? else { continue };
                if request.updated_before.is_none_or(|before| updated_at < before) {
                    page.uploads.push(status(id, backend.as_ref(), &record, updated_at));
                }
            }
            Ok(page)
        })
        .await
    }

    /// Removes every upload of a backend last updated before the given time, except those with an
    /// append or a commit under way. Looks at uploads only, never at objects.
    pub async fn purge_uploads(&self, request: &PurgeUploadsRequest) -> Result<PurgedUploads> {
        let backend = self.backend(request.backend_id.as_deref())?;
        let before = request.updated_before;
        run_blocking(move || {
            let mut purged = 0;
            for id in backend.upload_ids()? {
                let Some((_, updated_at)) = backend.read_upload(&id)? else { continue };
                if updated_at >= before {
                    continue;
                }
                match backend.remove_upload(&id) {
                    Ok(true) => purged += 1,
                    Ok(false) | Err(Error::Conflict(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(PurgedUploads { purged })
        })
        .await
    }

    /// The upload, locked for `what` and passing `check`, and its backend. A session is released
    /// on a blocking thread (an S3 lease is given back by a request).
    async fn locked(
        &self,
        id: UploadId,
        what: &'static str,
        check: impl FnOnce(&dyn UploadSession) -> Result<()> + Send + 'static,
    ) -> Result<(Arc<dyn Backend>, Box<dyn UploadSession>)> {
        let backends = self.backends_in_turn()?;
        run_blocking(move || {
            for backend in backends {
                if let Some(session) = backend.lock_upload(&id, what)? {
                    if let Err(e) = check(session.as_ref()) {
                        session.release();
                        return Err(e);
                    }
                    return Ok((backend, session));
                }
            }
            Err(id.not_found())
        })
        .await
    }
}
