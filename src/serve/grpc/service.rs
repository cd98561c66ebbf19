//! `inference.GRPCInferenceService`: the Open Inference Protocol's six RPCs, each a thin adapter
//! over what REST's V2 routes call (readiness, metadata, [`answer`]).

use super::call::call;
use super::pb::grpc_inference_service_server::GrpcInferenceService;
use super::pb::model_metadata_response::TensorMetadata;
use super::pb::{
    ModelInferRequest, ModelInferResponse, ModelMetadataRequest, ModelMetadataResponse,
    ModelReadyRequest, ModelReadyResponse, ServerLiveRequest, ServerLiveResponse,
    ServerMetadataRequest, ServerMetadataResponse, ServerReadyRequest, ServerReadyResponse,
};
use super::tensors::{input_tensors, request_header, response};
use crate::model::LoadedModel;
use crate::serve::state::App;
use crate::serve::v2::answer::answer;
use crate::serve::v2::{self, metadata_of};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The inference service over the app.
#[derive(Clone)]
pub struct InferenceService {
    app: App,
}

impl InferenceService {
    /// The service of `app`'s models.
    pub fn new(app: App) -> Self {
        InferenceService { app }
    }
}

/// The extensions gRPC serves: classification (binary tensor data and the model repository
/// are REST's).
const EXTENSIONS: [&str; 1] = ["classification"];

/// The version a request names: empty is the model's default.
fn version(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

fn find(app: &App, name: &str, version_text: &str) -> Result<Arc<LoadedModel>, Status> {
    if name.is_empty() {
        return Err(Status::invalid_argument("the model name is empty"));
    }
    Ok(v2::find(app, name, version(version_text))?)
}

fn tensor_metadata(tensors: Vec<v2::TensorMetadata>) -> Vec<TensorMetadata> {
    tensors
        .into_iter()
        .map(|t| TensorMetadata {
            name: t.name,
            datatype: t.datatype.to_string(),
            shape: t.shape,
        })
        .collect()
}

#[tonic::async_trait]
impl GrpcInferenceService for InferenceService {
    async fn server_live(
        &self,
        request: Request<ServerLiveRequest>,
    ) -> Result<Response<ServerLiveResponse>, Status> {
        call(&self.app, "ServerLive", request, |_, _| async {
            Ok(ServerLiveResponse { live: true })
        })
        .await
    }

    /// Ready as `/v2/health/ready` is: every model has a version that serves.
    async fn server_ready(
        &self,
        request: Request<ServerReadyRequest>,
    ) -> Result<Response<ServerReadyResponse>, Status> {
        let app = &self.app;
        call(app, "ServerReady", request, |_, _| async {
            let readiness = app.repository.readiness(app.settings.strict_readiness);
            Ok(ServerReadyResponse {
                ready: readiness.is_ready(),
            })
        })
        .await
    }

    /// `ready: false` for a model that exists but cannot serve now (loading, failed); NOT_FOUND
    /// for one that does not exist, as REST's 404.
    async fn model_ready(
        &self,
        request: Request<ModelReadyRequest>,
    ) -> Result<Response<ModelReadyResponse>, Status> {
        let app = &self.app;
        call(app, "ModelReady", request, |_, message| async move {
            match find(app, &message.name, &message.version) {
                Ok(_) => Ok(ModelReadyResponse { ready: true }),
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    Ok(ModelReadyResponse { ready: false })
                }
                Err(status) => Err(status),
            }
        })
        .await
    }

    async fn server_metadata(
        &self,
        request: Request<ServerMetadataRequest>,
    ) -> Result<Response<ServerMetadataResponse>, Status> {
        call(&self.app, "ServerMetadata", request, |_, _| async {
            Ok(ServerMetadataResponse {
                name: v2::SERVER_NAME.to_string(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                extensions: EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            })
        })
        .await
    }

    async fn model_metadata(
        &self,
        request: Request<ModelMetadataRequest>,
    ) -> Result<Response<ModelMetadataResponse>, Status> {
        let app = &self.app;
        call(app, "ModelMetadata", request, |_, message| async move {
            let model = find(app, &message.name, &message.version)?;
            let metadata = metadata_of(app, &model);
            Ok(ModelMetadataResponse {
                name: metadata.name,
                versions: metadata.versions,
                platform: metadata.platform.to_string(),
                inputs: tensor_metadata(metadata.inputs),
                outputs: tensor_metadata(metadata.outputs),
            })
        })
        .await
    }

    async fn model_infer(
        &self,
        request: Request<ModelInferRequest>,
    ) -> Result<Response<ModelInferResponse>, Status> {
        let app = &self.app;
        call(app, "ModelInfer", request, |asked, message| async move {
            let model = find(app, &message.model_name, &message.model_version)?;
            let header = request_header(&message).map_err(Status::invalid_argument)?;
            let tensors = input_tensors(&message).map_err(Status::invalid_argument)?;
            // The inputs are decoded: drop the request's raw bytes before predicting.
            drop(message);
            let answered = answer(app, &model, &asked, &header, &tensors).await?;
            Ok(response(
                model.name(),
                &model.version_label,
                header.id.as_deref(),
                answered,
            ))
        })
        .await
    }
}
