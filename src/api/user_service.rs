use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming, codegen::BoxStream};
use tracing::Instrument;

use super::{
    caller,
    convert::{
        SUSPEND_REASON_MAX, UserFilters, Violations, decode_cursor, decode_page_token,
        decode_time_cursor, encode_cursor, encode_page_token, encode_time_cursor, fingerprint,
        page_size, page_size_within, parse_ids, parse_import_options, parse_new_user,
        parse_request_id, parse_time, parse_user_filters, parse_user_update, timestamp,
    },
    pb::{self, user_service_server::UserService},
    transfer::{EXPORT_QUEUE, send_export, spool},
};
use crate::{
    domain::{Avatar, ImportCriteria, ImportJob, ImportJobId, ImportOrder, ProfileText, UserId},
    error::{Error, ParseError, Reason},
    users::{CreateUser, Users},
};

pub struct UserApi {
    users: Users,
    /// Largest CSV upload accepted, in bytes.
    import_max_bytes: u64,
}

impl UserApi {
    pub fn new(users: Users, import_max_bytes: u64) -> Self {
        Self {
            users,
            import_max_bytes,
        }
    }
}

#[tonic::async_trait]
impl UserService for UserApi {
    #[tracing::instrument(skip_all, fields(request_id = %req.get_ref().request_id))]
    async fn create_user(
        &self,
        req: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::CreateUserRequest {
            user,
            password,
            request_id,
            send_welcome_email,
            require_password_change,
        } = req.into_inner();
        let user = parse_new_user(user, "user")?;
        let request_id = request_id_of(&request_id)?;
        let created = self
            .users
            .create_user(
                &principal,
                &origin,
                CreateUser {
                    user,
                    password,
                    require_password_change,
                    send_welcome_email,
                    request_id,
                },
            )
            .await?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some((&created).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn get_user(
        &self,
        req: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let user_id =
            UserId::parse(&req.get_ref().user_id).map_err(|e| Error::invalid(e.at("user_id")))?;
        let user = self.users.get_user(&principal, user_id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_users(
        &self,
        req: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListUsersRequest {
            page_size: raw_page_size,
            page_token,
            query,
            role,
            team_id,
            state,
            locked,
            presence_status,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let criteria = parse_user_filters(
            &mut v,
            UserFilters {
                query,
                role,
                team_id,
                state,
                locked,
                presence_status,
            },
        );
        let criteria = v.finish(|| criteria)?;
        let filter_print = fingerprint(&criteria);
        let after = decode_page_token(&page_token, &filter_print)
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let page = self
            .users
            .list_users(&principal, criteria, after, size.unwrap_or_default())
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.iter().map(Into::into).collect(),
            next_page_token: page
                .next
                .map(|key| encode_page_token(&key, filter_print))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %req.get_ref().request_id))]
    async fn invite_user(
        &self,
        req: Request<pb::InviteUserRequest>,
    ) -> Result<Response<pb::InviteUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::InviteUserRequest { user, request_id } = req.into_inner();
        let user = parse_new_user(user, "user")?;
        let invited = self
            .users
            .invite_user(&principal, &origin, user, request_id_of(&request_id)?)
            .await?;
        Ok(Response::new(pb::InviteUserResponse {
            user: Some((&invited.user).into()),
            invite_expires_at: Some(timestamp(invited.expires_at)),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn resend_invite(
        &self,
        req: Request<pb::ResendInviteRequest>,
    ) -> Result<Response<pb::ResendInviteResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        let invited = self
            .users
            .resend_invite(&principal, &origin, user_id)
            .await?;
        Ok(Response::new(pb::ResendInviteResponse {
            user: Some((&invited.user).into()),
            invite_expires_at: Some(timestamp(invited.expires_at)),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn revoke_invite(
        &self,
        req: Request<pb::RevokeInviteRequest>,
    ) -> Result<Response<pb::RevokeInviteResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        self.users
            .revoke_invite(&principal, &origin, user_id)
            .await?;
        Ok(Response::new(pb::RevokeInviteResponse {}))
    }

    #[tracing::instrument(skip_all)]
    async fn update_user(
        &self,
        req: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::UpdateUserRequest { user, update_mask } = req.into_inner();
        let (user_id, etag, patch) = parse_user_update(user, update_mask)?;
        let user = self
            .users
            .update_user(&principal, &origin, user_id, patch, etag)
            .await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn suspend_user(
        &self,
        req: Request<pb::SuspendUserRequest>,
    ) -> Result<Response<pb::SuspendUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::SuspendUserRequest {
            user_id,
            reason,
            force,
        } = req.into_inner();
        let mut v = Violations::default();
        let user_id = v.check("user_id", UserId::parse(&user_id));
        let reason = v.check("reason", ProfileText::parse(&reason, SUSPEND_REASON_MAX));
        let (user_id, reason) = v.finish(|| Some((user_id?, reason?)))?;
        let user = self
            .users
            .suspend_user(&principal, &origin, user_id, reason, force)
            .await?;
        Ok(Response::new(pb::SuspendUserResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn reactivate_user(
        &self,
        req: Request<pb::ReactivateUserRequest>,
    ) -> Result<Response<pb::ReactivateUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        let user = self
            .users
            .reactivate_user(&principal, &origin, user_id)
            .await?;
        Ok(Response::new(pb::ReactivateUserResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn unlock_user(
        &self,
        req: Request<pb::UnlockUserRequest>,
    ) -> Result<Response<pb::UnlockUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        let user = self.users.unlock_user(&principal, &origin, user_id).await?;
        Ok(Response::new(pb::UnlockUserResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn delete_user(
        &self,
        req: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        self.users.delete_user(&principal, &origin, user_id).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn reset_password(
        &self,
        req: Request<pb::ResetPasswordRequest>,
    ) -> Result<Response<pb::ResetPasswordResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::ResetPasswordRequest {
            user_id,
            new_password,
            skip_password_change,
        } = req.into_inner();
        let user_id = parse_user_id(&user_id)?;
        let user = self
            .users
            .reset_password(
                &principal,
                &origin,
                user_id,
                &new_password,
                !skip_password_change,
            )
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn force_password_change(
        &self,
        req: Request<pb::ForcePasswordChangeRequest>,
    ) -> Result<Response<pb::ForcePasswordChangeResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        let user = self
            .users
            .force_password_change(&principal, &origin, user_id)
            .await?;
        Ok(Response::new(pb::ForcePasswordChangeResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn set_avatar(
        &self,
        req: Request<pb::SetAvatarRequest>,
    ) -> Result<Response<pb::SetAvatarResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let pb::SetAvatarRequest { user_id, image } = req.into_inner();
        let mut v = Violations::default();
        let user_id = v.check("user_id", UserId::parse(&user_id));
        let avatar = v.check("image", Avatar::parse(image));
        let (user_id, avatar) = v.finish(|| Some((user_id?, avatar?)))?;
        let user = self
            .users
            .set_avatar(&principal, &origin, user_id, avatar)
            .await?;
        Ok(Response::new(pb::SetAvatarResponse {
            user: Some((&user).into()),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn import_users(
        &self,
        req: Request<Streaming<pb::ImportUsersRequest>>,
    ) -> Result<Response<pb::ImportUsersResponse>, Status> {
        let (principal, origin) = caller(&req)?;
        let mut upload = req.into_inner();
        let first = upload.message().await?.ok_or_else(|| {
            Error::invalid(
                ParseError::new(Reason::InvalidArgument, "the upload has no message")
                    .at("file_name"),
            )
        })?;
        let options = parse_import_options(&first)?;
        let (job, fresh) = self
            .users
            .start_import(&principal, &origin, &options)
            .await?;
        if !fresh {
            return Ok(import_response(&job));
        }
        // On a task of its own: a client that goes away drops this handler,
        // and the job must still end (FAILED, the upload broken off).
        let users = self.users.clone();
        let max_bytes = self.import_max_bytes;
        let uploading = job.clone();
        let return_when_uploaded = first.return_when_uploaded;
        let (uploaded, arrived) = oneshot::channel();
        let importing = tokio::spawn(
            async move {
                let id = job.id;
                let imported =
                    match spool(first.chunk, &mut upload, max_bytes, options.size_bytes).await {
                        Ok(file) => {
                            let _ = uploaded.send(());
                            users
                                .run_import(&principal, &origin, &options, job, file)
                                .await
                        }
                        Err(err) => Err(err),
                    };
                if let Err(err) = &imported {
                    // Whatever broke the import (too large, the client gone,
                    // an error), the job must not stay UPLOADING.
                    let why = format!("the import stopped: {err}");
                    if let Err(also) = users.abandon_import(&principal, id, &why).await {
                        tracing::error!(%also, "cannot mark the import FAILED");
                    }
                }
                imported
            }
            .in_current_span(),
        );
        // Without the signal the upload failed: the task's error says why.
        if return_when_uploaded && arrived.await.is_ok() {
            return Ok(import_response(&uploading));
        }
        let job = importing.await.map_err(Error::internal)??;
        Ok(import_response(&job))
    }

    #[tracing::instrument(skip_all, fields(import_job_id = %req.get_ref().import_job_id))]
    async fn get_import_job(
        &self,
        req: Request<pb::GetImportJobRequest>,
    ) -> Result<Response<pb::GetImportJobResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let id = parse_job_id(&req.get_ref().import_job_id)?;
        let job = self.users.import_job(&principal, id).await?;
        Ok(Response::new(pb::GetImportJobResponse {
            import_job: Some(pb::ImportJob::from(&job)),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_import_jobs(
        &self,
        req: Request<pb::ListImportJobsRequest>,
    ) -> Result<Response<pb::ListImportJobsResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListImportJobsRequest {
            page_size: raw_page_size,
            page_token,
            uploaded_after,
            uploaded_before,
            order_by,
            descending,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size(raw_page_size));
        let after = v.check("uploaded_after", uploaded_after.map(parse_time).transpose());
        let before = v.check(
            "uploaded_before",
            uploaded_before.map(parse_time).transpose(),
        );
        let order = v.check(
            "order_by",
            match pb::ImportJobOrder::try_from(order_by) {
                Ok(pb::ImportJobOrder::Unspecified | pb::ImportJobOrder::UploadedAt) => {
                    Ok(ImportOrder::UploadedAt)
                }
                Ok(pb::ImportJobOrder::FileName) => Ok(ImportOrder::FileName),
                Ok(pb::ImportJobOrder::UploadedBy) => Ok(ImportOrder::UploadedBy),
                Ok(pb::ImportJobOrder::Status) => Ok(ImportOrder::Status),
                Err(_) => Err(ParseError::new(
                    Reason::InvalidArgument,
                    format!("{order_by} is not a sort order"),
                )),
            },
        );
        let (size, criteria) = v.finish(|| {
            Some((
                size?,
                ImportCriteria {
                    uploaded_after: after?,
                    uploaded_before: before?,
                    order: order?,
                    descending,
                },
            ))
        })?;
        let print = fingerprint(&criteria);
        let after = decode_cursor(&page_token, &print)
            .and_then(|c| c.map(|(_, id)| ImportJobId::parse(&id)).transpose())
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let (jobs, more) = self
            .users
            .list_import_jobs(&principal, &criteria, after, size)
            .await?;
        let next_page_token = match jobs.last() {
            Some(last) if more => encode_cursor("", &last.id.to_string(), print),
            _ => String::new(),
        };
        Ok(Response::new(pb::ListImportJobsResponse {
            import_jobs: jobs.iter().map(pb::ImportJob::from).collect(),
            next_page_token,
        }))
    }

    #[tracing::instrument(skip_all, fields(import_job_id = %req.get_ref().import_job_id))]
    async fn get_import_report(
        &self,
        req: Request<pb::GetImportReportRequest>,
    ) -> Result<Response<pb::GetImportReportResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let id = parse_job_id(&req.get_ref().import_job_id)?;
        let report = self.users.import_report(&principal, id).await?;
        Ok(Response::new(pb::GetImportReportResponse { report }))
    }

    #[tracing::instrument(skip_all, fields(user_id = %req.get_ref().user_id))]
    async fn get_avatar(
        &self,
        req: Request<pb::GetAvatarRequest>,
    ) -> Result<Response<pb::GetAvatarResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let user_id = parse_user_id(&req.get_ref().user_id)?;
        let (image, content_type) = self.users.get_avatar(&principal, user_id).await?;
        Ok(Response::new(pb::GetAvatarResponse {
            image,
            content_type,
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn list_deleted_users(
        &self,
        req: Request<pb::ListDeletedUsersRequest>,
    ) -> Result<Response<pb::ListDeletedUsersResponse>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ListDeletedUsersRequest {
            page_size: raw_page_size,
            page_token,
            user_ids,
        } = req.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", page_size_within(raw_page_size, 50, 1000));
        let ids = parse_ids(&mut v, "user_ids", &user_ids, UserId::parse);
        let (size, ids) = v.finish(|| Some((size?, ids?)))?;
        let print = fingerprint(&ids);
        let after = decode_time_cursor(&page_token, &print)
            .and_then(|cursor| {
                cursor
                    .map(|(at, id)| Ok((at, UserId::parse(&id)?)))
                    .transpose()
            })
            .map_err(|e| Error::invalid(e.at("page_token")))?;
        let (tombstones, next) = self
            .users
            .list_deleted(&principal, &ids, after, size)
            .await?;
        Ok(Response::new(pb::ListDeletedUsersResponse {
            deleted_users: tombstones
                .iter()
                .map(|t| pb::DeletedUser {
                    user_id: t.id.to_string(),
                    email: t.email.as_str().to_owned(),
                    display_name: t.display_name.as_str().to_owned(),
                    deleted_at: Some(timestamp(t.deleted_at)),
                    deleted_by: t.deleted_by.map(|id| id.to_string()).unwrap_or_default(),
                })
                .collect(),
            next_page_token: next
                .map(|(at, id)| encode_time_cursor(at, &id.to_string(), print))
                .unwrap_or_default(),
        }))
    }

    #[tracing::instrument(skip_all)]
    async fn export_users(
        &self,
        req: Request<pb::ExportUsersRequest>,
    ) -> Result<Response<BoxStream<pb::ExportUsersResponse>>, Status> {
        let (principal, _) = caller(&req)?;
        let pb::ExportUsersRequest {
            query,
            role,
            team_id,
            state,
            locked,
            presence_status,
        } = req.into_inner();
        let mut v = Violations::default();
        let criteria = parse_user_filters(
            &mut v,
            UserFilters {
                query,
                role,
                team_id,
                state,
                locked,
                presence_status,
            },
        );
        let criteria = v.finish(|| criteria)?;
        let export = self.users.export_users(&principal, criteria).await?;
        let (sender, receiver) = mpsc::channel(EXPORT_QUEUE);
        tokio::spawn(send_export(export, sender).in_current_span());
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

fn parse_job_id(raw: &str) -> Result<ImportJobId, Error> {
    ImportJobId::parse(raw).map_err(|e| Error::invalid(e.at("import_job_id")))
}

fn import_response(job: &ImportJob) -> Response<pb::ImportUsersResponse> {
    Response::new(pb::ImportUsersResponse {
        import_job: Some(pb::ImportJob::from(job)),
    })
}

fn parse_user_id(raw: &str) -> Result<UserId, Error> {
    UserId::parse(raw).map_err(|e| Error::invalid(e.at("user_id")))
}

/// A request id, or none when blank.
fn request_id_of(raw: &str) -> Result<Option<String>, Error> {
    parse_request_id(raw).map_err(|e| Error::invalid(e.at("request_id")))
}
