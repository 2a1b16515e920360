//! What every command against a deployed stack takes: where the stack is and how to reach it.

use clap::Args;

/// Where the deployed stack is: `--stack NAME` (its outputs), or each output as a flag or its
/// environment variable; a flag wins over the stack's output.
#[derive(Args, Debug, Clone)]
pub struct StackArgs {
    /// The CloudFormation stack (as `sam deploy` named it); its outputs say where the state
    /// machines, the run table and the approval API are.
    #[arg(long = "stack", env = "CUTOVER_STACK", value_name = "NAME")]
    pub stack_name: Option<String>,
    /// The stack's CutoverStateMachineArn output.
    #[arg(long, env = "CUTOVER_STATE_MACHINE_ARN")]
    pub state_machine_arn: Option<String>,
    /// The stack's WaveStateMachineArn output.
    #[arg(long, env = "CUTOVER_WAVE_STATE_MACHINE_ARN")]
    pub wave_state_machine_arn: Option<String>,
    /// The stack's RunTableName output.
    #[arg(long, env = "CUTOVER_TABLE")]
    pub table: Option<String>,
    /// The stack's ApprovalApiUrl output.
    #[arg(long, env = "CUTOVER_API_URL")]
    pub api_url: Option<String>,
    /// A named profile of the shared AWS config files (as the AWS CLI takes it; AWS_PROFILE
    /// otherwise).
    #[arg(long)]
    pub profile: Option<String>,
    /// The stack's region (AWS_REGION or the profile's otherwise).
    #[arg(long)]
    pub region: Option<String>,
    /// An AWS-compatible endpoint (e.g. moto) instead of the environment's AWS account.
    #[arg(long, value_name = "URL")]
    pub aws_endpoint_url: Option<String>,
    /// A bearer token for an approval API deployed with ApprovalAuthorizer=JWT (best from the
    /// environment, so it stays out of shell history); without it, requests are SigV4-signed.
    #[arg(long, env = "CUTOVER_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
}

#[cfg(feature = "aws")]
impl StackArgs {
    /// Connects once: the SDK configuration, and the stack's outputs with `--stack`.
    pub fn connect(&self) -> Result<cutover_cli::deployed::Context, String> {
        cutover_cli::deployed::Context::connect(&self.stack())
    }

    /// Where the flags say the stack's pieces are, before its outputs fill in the rest.
    pub fn stack(&self) -> cutover_cli::deployed::Stack {
        cutover_cli::deployed::Stack {
            stack_name: self.stack_name.clone(),
            state_machine_arn: self.state_machine_arn.clone(),
            wave_state_machine_arn: self.wave_state_machine_arn.clone(),
            wave_scheduler_role_arn: None,
            table: self.table.clone(),
            api_url: self.api_url.clone(),
            profile: self.profile.clone(),
            region: self.region.clone(),
            endpoint: self.aws_endpoint_url.clone(),
            api_token: self.api_token.clone(),
        }
    }
}

/// Exit 1 with the reason, for a CLI built without the AWS SDK.
#[cfg(not(feature = "aws"))]
pub fn unavailable() -> std::process::ExitCode {
    eprintln!("error: this cutover was built without AWS support: build it with `--features aws` (cargo run --features aws --bin cutover -- run …)");
    std::process::ExitCode::from(1)
}

#[cfg(feature = "aws")]
/// Prints an error line and gives exit 1 (AWS or the API refused, or the stack is not there).
pub fn fail(e: impl std::fmt::Display) -> std::process::ExitCode {
    eprintln!("error: {e}");
    std::process::ExitCode::from(1)
}
