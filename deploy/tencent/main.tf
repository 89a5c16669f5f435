# wxsession on Tencent Cloud with Terraform (provider tencentcloudstack/tencentcloud):
# the five public SCF Web functions from `make package`, each with a public
# function URL, the token function (no URL: SCF Invoke API only), and the one
# custom domain the mini-program calls, routing /login, /validate, /decrypt,
# /phonenumber and /logout to their functions. serverless.yml
# (scf deploy) creates the functions and URLs too, but not the custom domain;
# see docs/deploy-tencent.md.
#
#   make package
#   cd deploy/tencent
#   terraform init
#   terraform apply -var-file=wxsession.tfvars   # keep the tfvars file out of git
#
# Secrets (wx_secret, session_seal_key, redis_url) are sensitive variables;
# Terraform still writes them into its state, so keep the state private (a
# COS backend with encryption, or local and never committed).

terraform {
  required_providers {
    tencentcloud = {
      source  = "tencentcloudstack/tencentcloud"
      version = ">= 1.81.0"
    }
  }
}

provider "tencentcloud" {
  region = var.region
}

variable "region" {
  type        = string
  default     = "ap-guangzhou"
  description = "Region of the functions, the VPC and the Redis instance."
}

variable "vpc_id" {
  type        = string
  description = "VPC of the TencentDB for Redis instance (vpc-…)."
}

variable "subnet_id" {
  type        = string
  description = "Subnet the functions join (subnet-…), in that VPC."
}

variable "wx_appid" {
  type        = string
  description = "The mini-program's AppID (WX_APPID)."
}

variable "wx_secret" {
  type        = string
  sensitive   = true
  description = "The mini-program's AppSecret (WX_SECRET); login, phonenumber and token alone get it."
}

variable "session_seal_key" {
  type        = string
  sensitive   = true
  description = "base64 of 32 random bytes (openssl rand -base64 32) sealing session_keys at rest (SESSION_SEAL_KEY)."
}

variable "redis_url" {
  type        = string
  sensitive   = true
  description = "REDIS_URL: redis://:<password>@<private ip>:6379/0; a custom account is redis://:<account>%40<password>@…"
}

variable "domain" {
  type        = string
  description = "The ICP-filed domain the mini-program calls (e.g. api.example.cn), listed in its request legal domains."
}

variable "certificate_id" {
  type        = string
  description = "SSL certificate ID of that domain in Tencent Cloud SSL Certificates."
}

variable "package_dir" {
  type        = string
  default     = "../../dist/package"
  description = "Where make package wrote wxsession-<function>-scf.zip."
}

locals {
  routes = {
    login       = "/login"
    validate    = "/validate"
    decrypt     = "/decrypt"
    logout      = "/logout"
    phonenumber = "/phonenumber"
  }
  common_env = {
    WX_APPID        = var.wx_appid
    SESSION_STORE   = "redis"
    REDIS_URL       = var.redis_url
    SESSION_TTL     = "24h"
    SESSION_MAX_AGE = "720h"
  }
  # Least privilege: only login, phonenumber and token call WeChat with the
  # AppSecret; login seals and decrypt opens session_keys (the seal key).
  # phonenumber and token fetch the app's access_token (the AppSecret) and
  # keep it sealed at rest (the seal key).
  env = {
    login       = merge(local.common_env, { WX_SECRET = var.wx_secret, SESSION_SEAL_KEY = var.session_seal_key })
    validate    = local.common_env
    decrypt     = merge(local.common_env, { SESSION_SEAL_KEY = var.session_seal_key })
    logout      = local.common_env
    phonenumber = merge(local.common_env, { WX_SECRET = var.wx_secret, SESSION_SEAL_KEY = var.session_seal_key })
    token       = merge(local.common_env, { WX_SECRET = var.wx_secret, SESSION_SEAL_KEY = var.session_seal_key })
  }
}

resource "tencentcloud_scf_function" "wxsession" {
  for_each = local.routes

  name        = "wxsession-${each.key}"
  description = "wxsession ${each.value}"
  func_type   = "HTTP" # a Web function: scf_bootstrap serves HTTP on port 9000
  runtime     = "Go1"
  handler     = "scf_bootstrap"
  zip_file    = "${var.package_dir}/wxsession-${each.key}-scf.zip"
  mem_size    = 128
  # A login may wait for WeChat twice (3 s each) and write the store.
  timeout = 10

  # The VPC reaches Redis; public access reaches api.weixin.qq.com.
  vpc_id            = var.vpc_id
  subnet_id         = var.subnet_id
  enable_public_net = true
  # A fixed public egress IP (固定出口 IP) for phonenumber, the caller of
  # stable_token: add it to the app's IP allow-list (IP白名单), or WeChat
  # answers 40164 when the allow-list is on. docs/deploy-tencent.md.
  enable_eip_config = each.key == "phonenumber"

  environment = local.env[each.key]

  # The function URL (trigger type http): public, no CAM signature, since the
  # mini-program cannot sign requests; the skey is the authentication.
  triggers {
    name = "wxsession-url"
    type = "http"
    trigger_desc = jsonencode({
      AuthType  = "NONE"
      NetConfig = { EnableIntranet = false, EnableExtranet = true }
    })
  }
}

# The app's access_token for your own functions: an event function with no
# trigger and no route, reached only through SCF's Invoke API with CAM
# credentials allowed scf:InvokeFunction on it (docs/deploy-tencent.md).
resource "tencentcloud_scf_function" "token" {
  name        = "wxsession-token"
  description = "wxsession POST /token (SCF Invoke API only, never routed)"
  func_type   = "Event" # scf-go-lib's Go1 protocol; the Invoke API's event is a POST /token API gateway event
  runtime     = "Go1"
  handler     = "main"
  zip_file    = "${var.package_dir}/wxsession-token-scf.zip"
  mem_size    = 128
  timeout     = 10

  vpc_id            = var.vpc_id
  subnet_id         = var.subnet_id
  enable_public_net = true
  # The same fixed egress IP question as phonenumber: it calls stable_token.
  enable_eip_config = true

  environment = local.env["token"]
}

# One HTTPS origin for the mini-program. Each route keeps its path: the
# function receives /login, /validate, … exactly as requested (no
# path_rewrite), which is the route it answers.
resource "tencentcloud_scf_custom_domain" "wxsession" {
  domain   = var.domain
  protocol = "HTTPS"

  cert_config {
    certificate_id = var.certificate_id
  }

  dynamic "endpoints_config" {
    for_each = local.routes
    content {
      namespace     = "default"
      function_name = tencentcloud_scf_function.wxsession[endpoints_config.key].name
      qualifier     = "$LATEST"
      path_match    = endpoints_config.value
    }
  }

  waf_config {
    waf_open = "CLOSE"
  }
}

output "base_url" {
  description = "The mini-program client's baseURL."
  value       = "https://${var.domain}"
}

output "function_hosts" {
  description = "Each function's own host (its function URL is shown in the SCF console under 函数 URL)."
  value       = { for k, f in tencentcloud_scf_function.wxsession : k => f.host }
}

output "token_function" {
  description = "The token function's name, for SCF Invoke (FunctionName) from your own functions."
  value       = tencentcloud_scf_function.token.name
}
