#!/usr/bin/env python3
"""Record the IAM correlation samples of pgtrail (samples/iam/).

Run by hand, as root, on Debian 12 with postgresql-15, moto 5.2 (moto_server) and boto3 installed:

    python3 samples/iam/record.py

NOT run in CI. What it does, in one run, so that the times of both sides agree:

1. Starts `moto_server` on 127.0.0.1 (a free port) and, with boto3, creates the AWS side of the seed
   scenario in two accounts: the application/database account 123456789012 (moto's default) and a
   security account 444455556666. IAM users, roles, instance profiles and policies granting
   `rds-db:connect`; an RDS instance with IAM authentication (for its DbiResourceId); a VPC
   127.0.0.0/16 whose EC2 instances have exactly the loopback addresses the PostgreSQL clients use;
   STS AssumeRole calls (EC2 instance-profile sessions, and the cross-account chain
   alice -> pg-mgmt-role -> pg-monitor-role). It saves the real API responses:
   `aws/iam-authorization-*.json` (get_account_authorization_details), `aws/ec2-describe-instances.json`,
   `aws/ec2-describe-network-interfaces.json`, `aws/rds-describe-db-instances.json`.
2. moto writes NO CloudTrail records. The script writes CloudTrail records itself, in the documented
   record shape (shared/reference/aws-sources-and-schemas.md §3d/§4), filled from the real moto
   responses of each call (issued access key ids, session tokens, expirations, assumed-role ARNs,
   account ids) and from the wall-clock time of the call. `sourceIPAddress` is what AWS would log:
   `ec2.amazonaws.com` for the EC2 service's instance-profile calls, and for calls made "from" a host
   the loopback address that host's PostgreSQL client uses below (moto cannot tell us the address;
   the boto3 calls all leave from 127.0.0.1). Files: `cloudtrail/app-account/...json.gz` (S3 delivery
   file + a digest file that must be skipped), `cloudtrail/security-account.jsonl` (one event per
   line, as CloudTrail writes to CloudWatch Logs), `cloudtrail/lookup-events.json`
   (`aws cloudtrail lookup-events` shape).
3. Starts a throwaway PostgreSQL 15 (Debian build, with the PAM service of samples/record.py standing
   in for RDS IAM tokens) as the `postgres` user on 127.0.0.1 only, and connects from distinct
   loopback source addresses (127.0.0.11, .20, .22, .30, .99) with a small Python client that binds
   its source address and speaks the PostgreSQL protocol (SSLRequest, TLS, startup packet, the
   cleartext password exchange PAM asks for, Terminate). libpq cannot bind a source address, which is
   why psql is not used. The server's log is copied to `postgresql.log` unchanged.
4. Writes `iam-ground-truth.jsonl` (what each attempt was and which IAM session made it, written from
   what the script did) and `meta.json`, then stops PostgreSQL and moto.
"""
from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import shutil
import socket
import ssl
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import record as pgrec  # noqa: E402  (samples/record.py: cluster, PAM imitation, token signer)

import boto3  # noqa: E402
from moto import __version__ as moto_version  # noqa: E402

APP_ACCOUNT = "123456789012"
SEC_ACCOUNT = "444455556666"
REGION = "us-east-1"
PG_PORT = 55171

# Loopback "hosts": each PostgreSQL client binds one of these source addresses.
APP_IP = "127.0.0.11"       # EC2 instance app-1 (pg-app-role)
PROXY_IP = "127.0.0.20"     # an ENI without instance: a connection proxy in front of web-1/web-2
WEB1_IP = "127.0.0.21"      # EC2 instance web-1 (pg-web-role)
WEB2_IP = "127.0.0.22"      # EC2 instance web-2 (pg-web-role)
BASTION_IP = "127.0.0.30"   # the security team's bastion (alice's AWS calls come from it)
UNKNOWN_IP = "127.0.0.99"   # nowhere in the inventory or CloudTrail


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def ct_time(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def ct_expiration(t: dt.datetime) -> str:
    """CloudTrail's non-ISO expiration, newer variant: `Sep 14, 2020, 7:01:26 AM` (UTC)."""
    t = t.astimezone(dt.timezone.utc)
    hour = t.hour % 12 or 12
    return f"{t:%b} {t.day}, {t.year}, {hour}:{t:%M:%S} {'AM' if t.hour < 12 else 'PM'}"


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Moto:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["moto_server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("moto_server did not start")

    def client(self, service: str, key="AKIAIOSFODNN7EXAMPLE", secret="moto-secret", token=None):
        return boto3.client(service, endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
                            aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=token)

    def as_creds(self, service: str, creds: dict):
        return self.client(service, creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def jdump(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=False,
                               default=lambda o: o.isoformat() if hasattr(o, "isoformat") else str(o)) + "\n")


def policy(actions, resources, effect="Allow", condition=None) -> str:
    st = {"Effect": effect, "Action": actions, "Resource": resources}
    if condition:
        st["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [st]})


TRUST_EC2 = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                        "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


# ---------------------------------------------------------------------------------------------
# CloudTrail records built from real moto responses
# ---------------------------------------------------------------------------------------------

def base_record(name: str, t: dt.datetime, source: str, ip: str, user_agent: str, recipient: str,
                identity: dict, request: dict | None, response: dict | None) -> dict:
    return {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": ct_time(t),
        "eventSource": source,
        "eventName": name,
        "awsRegion": REGION,
        "sourceIPAddress": ip,
        "userAgent": user_agent,
        "requestParameters": request,
        "responseElements": response,
        "requestID": str(uuid.uuid4()),
        "eventID": str(uuid.uuid4()),
        "readOnly": name.startswith("Get"),
        "eventType": "AwsApiCall",
        "managementEvent": True,
        "recipientAccountId": recipient,
        "eventCategory": "Management",
    }


def assume_role_record(t, resp, *, role_arn, session_name, identity, ip, user_agent, recipient,
                       source_identity=None, shared=None) -> dict:
    creds = resp["Credentials"]
    request = {"roleArn": role_arn, "roleSessionName": session_name}
    response = {
        "credentials": {"accessKeyId": creds["AccessKeyId"], "sessionToken": creds["SessionToken"],
                        "expiration": ct_expiration(creds["Expiration"])},
    }
    if "AssumedRoleUser" in resp and identity.get("type") != "AWSService":
        response["assumedRoleUser"] = {"assumedRoleId": resp["AssumedRoleUser"]["AssumedRoleId"],
                                       "arn": resp["AssumedRoleUser"]["Arn"]}
    if source_identity:
        request["sourceIdentity"] = source_identity
        response["sourceIdentity"] = source_identity
    rec = base_record("AssumeRole", t, "sts.amazonaws.com", ip, user_agent, recipient, identity,
                      request, response)
    role_account = role_arn.split(":")[4]
    rec["resources"] = [{"ARN": role_arn, "accountId": role_account, "type": "AWS::IAM::Role"}]
    rec["sharedEventID"] = shared or str(uuid.uuid4())
    return rec


def assumed_identity(resp: dict, role_arn: str, creds_of_caller: dict, created: dt.datetime,
                     source_identity=None) -> dict:
    """userIdentity of a call made with the credentials `resp` returned."""
    arn = resp["AssumedRoleUser"]["Arn"]
    account = arn.split(":")[4]
    ident = {
        "type": "AssumedRole",
        "principalId": resp["AssumedRoleUser"]["AssumedRoleId"],
        "arn": arn,
        "accountId": account,
        "accessKeyId": creds_of_caller["AccessKeyId"],
        "sessionContext": {
            "sessionIssuer": {"type": "Role", "principalId": resp["AssumedRoleUser"]["AssumedRoleId"].split(":")[0],
                              "arn": role_arn, "accountId": account, "userName": role_arn.rsplit("/", 1)[1]},
            "attributes": {"creationDate": ct_time(created), "mfaAuthenticated": "false"},
        },
    }
    if source_identity:
        ident["sessionContext"]["sourceIdentity"] = source_identity
    return ident


# ---------------------------------------------------------------------------------------------
# A libpq-free PostgreSQL client that binds its source address
# ---------------------------------------------------------------------------------------------

def pg_login(source_ip: str, user: str, db: str, password: str, app: str = "iam-sample") -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(15)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", PG_PORT))
    s.sendall(struct.pack("!II", 8, 80877103))  # SSLRequest
    if s.recv(1) != b"S":
        raise RuntimeError("server refused TLS")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = ctx.wrap_socket(s)
    t.sendall(pgrec.startup_packet([(b"user", user.encode()), (b"database", db.encode()),
                                    (b"application_name", app.encode())]))
    result = {"ok": False, "pid": None, "error": None}

    def read_msg():
        head = b""
        while len(head) < 5:
            chunk = t.recv(5 - len(head))
            if not chunk:
                return None, b""
            head += chunk
        kind, length = head[:1], struct.unpack("!I", head[1:])[0]
        body = b""
        while len(body) < length - 4:
            chunk = t.recv(length - 4 - len(body))
            if not chunk:
                break
            body += chunk
        return kind, body

    while True:
        kind, body = read_msg()
        if kind is None:
            break
        if kind == b"R":
            code = struct.unpack("!I", body[:4])[0]
            if code == 3:  # AuthenticationCleartextPassword (what PAM asks for)
                pw = password.encode() + b"\0"
                t.sendall(b"p" + struct.pack("!I", len(pw) + 4) + pw)
            elif code != 0:
                raise RuntimeError(f"unexpected authentication request {code}")
        elif kind == b"K":
            result["pid"] = struct.unpack("!I", body[:4])[0]
        elif kind == b"E":
            fields = dict((f[:1].decode(), f[1:].decode()) for f in body.split(b"\0") if f)
            result["error"] = fields.get("M")
            break
        elif kind == b"Z":
            result["ok"] = True
            t.sendall(b"X" + struct.pack("!I", 4))  # Terminate
            break
    try:
        t.close()
    except OSError:
        pass
    return result


# ---------------------------------------------------------------------------------------------

def main() -> int:
    if os.geteuid() != 0:
        print("run as root (PostgreSQL runs as the postgres OS user through runuser)", file=sys.stderr)
        return 2
    out = HERE
    for sub in ["aws", "cloudtrail"]:
        shutil.rmtree(out / sub, ignore_errors=True)
    moto = Moto()
    cluster = None
    try:
        # --- AWS side --------------------------------------------------------------------------
        iam = moto.client("iam")
        sts = moto.client("sts")
        ec2 = moto.client("ec2")
        rds = moto.client("rds")
        db = rds.create_db_instance(DBInstanceIdentifier="orders-db", DBInstanceClass="db.t3.micro",
                                    Engine="postgres", MasterUsername="postgres",
                                    MasterUserPassword="not-used-1234", AllocatedStorage=20,
                                    EnableIAMDatabaseAuthentication=True,
                                    EnableCloudwatchLogsExports=["postgresql"])["DBInstance"]
        rid = db["DbiResourceId"]
        dbuser = lambda user, res=rid: f"arn:aws:rds-db:{REGION}:{APP_ACCOUNT}:dbuser:{res}/{user}"  # noqa: E731

        app_pol = iam.create_policy(PolicyName="pg-app-connect",
                                    PolicyDocument=policy("rds-db:connect", dbuser("iam_app")))["Policy"]["Arn"]
        web_pol = iam.create_policy(PolicyName="pg-web-connect",
                                    PolicyDocument=policy(["rds-db:connect"], [dbuser("iam_web")]))["Policy"]["Arn"]
        for role, pol in [("pg-app-role", app_pol), ("pg-web-role", web_pol)]:
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST_EC2)
            iam.attach_role_policy(RoleName=role, PolicyArn=pol)
        iam.create_instance_profile(InstanceProfileName="pg-app-profile")
        iam.add_role_to_instance_profile(InstanceProfileName="pg-app-profile", RoleName="pg-app-role")
        iam.create_instance_profile(InstanceProfileName="pg-web-profile")
        iam.add_role_to_instance_profile(InstanceProfileName="pg-web-profile", RoleName="pg-web-role")
        # The monitoring role the security account assumes (any resource id: rds-db:* and */pgmonitor).
        iam.create_role(RoleName="pg-monitor-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{SEC_ACCOUNT}:role/pg-mgmt-role"}}]}))
        iam.put_role_policy(RoleName="pg-monitor-role", PolicyName="monitor-connect",
                            PolicyDocument=policy("rds-db:*",
                                                  f"arn:aws:rds-db:{REGION}:{APP_ACCOUNT}:dbuser:*/pgmonitor"))
        # A developer group whose members may connect as iam_dev only from the office network
        # (a condition pgtrail lists as not evaluated), and may never connect as iam_app.
        iam.create_group(GroupName="developers")
        iam.put_group_policy(GroupName="developers", PolicyName="dev-connect", PolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "rds-db:connect", "Resource": dbuser("iam_dev"),
                 "Condition": {"IpAddress": {"aws:SourceIp": "198.51.100.0/24"}}},
                {"Effect": "Deny", "Action": "rds-db:*", "Resource": dbuser("iam_app")}]}))
        iam.create_user(UserName="dev-bob")
        iam.add_user_to_group(GroupName="developers", UserName="dev-bob")

        # Security account: alice may assume pg-mgmt-role, which may assume pg-monitor-role.
        boot = sts.assume_role(RoleArn=f"arn:aws:iam::{SEC_ACCOUNT}:role/OrganizationAccountAccessRole",
                               RoleSessionName="setup")["Credentials"]
        iam_b = moto.as_creds("iam", boot)
        iam_b.create_user(UserName="alice")
        alice_key = iam_b.create_access_key(UserName="alice")["AccessKey"]
        iam_b.put_user_policy(UserName="alice", PolicyName="assume-mgmt",
                              PolicyDocument=policy("sts:AssumeRole",
                                                    f"arn:aws:iam::{SEC_ACCOUNT}:role/pg-mgmt-role"))
        iam_b.create_role(RoleName="pg-mgmt-role", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"AWS": f"arn:aws:iam::{SEC_ACCOUNT}:user/alice"}}]}))
        iam_b.put_role_policy(RoleName="pg-mgmt-role", PolicyName="assume-monitor",
                              PolicyDocument=policy("sts:AssumeRole",
                                                    f"arn:aws:iam::{APP_ACCOUNT}:role/pg-monitor-role"))

        # EC2: a VPC holding the loopback addresses the clients bind.
        vpc = ec2.create_vpc(CidrBlock="127.0.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="127.0.0.0/24",
                                   AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
        instances = {}
        for name, ip, profile in [("app-1", APP_IP, "pg-app-profile"), ("web-1", WEB1_IP, "pg-web-profile"),
                                  ("web-2", WEB2_IP, "pg-web-profile")]:
            inst = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet,
                                     PrivateIpAddress=ip, InstanceType="t3.micro",
                                     IamInstanceProfile={"Name": profile},
                                     TagSpecifications=[{"ResourceType": "instance",
                                                         "Tags": [{"Key": "Name", "Value": name}]}])
            instances[name] = inst["Instances"][0]["InstanceId"]
        ec2.create_network_interface(SubnetId=subnet, PrivateIpAddress=PROXY_IP,
                                     Description="pgbouncer proxy for web-1/web-2 (no instance)")

        # --- STS: the sessions, with CloudTrail records from the responses ----------------------
        app_trail: list[dict] = []
        sec_trail: list[dict] = []
        lookup: list[dict] = []
        ec2_identity = {"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}
        sessions = {}
        for name, role in [("app-1", "pg-app-role"), ("web-1", "pg-web-role"), ("web-2", "pg-web-role")]:
            arn = f"arn:aws:iam::{APP_ACCOUNT}:role/{role}"
            t = utc_now()
            resp = sts.assume_role(RoleArn=arn, RoleSessionName=instances[name], DurationSeconds=21600)
            sessions[name] = (arn, resp, t)
            app_trail.append(assume_role_record(t, resp, role_arn=arn, session_name=instances[name],
                                                identity=ec2_identity, ip="ec2.amazonaws.com",
                                                user_agent="ec2.amazonaws.com", recipient=APP_ACCOUNT))
            time.sleep(1.1)
        # app-1 uses its credentials (GetCallerIdentity) from its own address: same-key activity.
        arn, resp, t_app = sessions["app-1"]
        t = utc_now()
        who = moto.as_creds("sts", resp["Credentials"]).get_caller_identity()
        rec = base_record("GetCallerIdentity", t, "sts.amazonaws.com", APP_IP,
                          "aws-sdk-rust/1.3 os/linux lang/rust", APP_ACCOUNT,
                          assumed_identity(resp, arn, resp["Credentials"], t_app), None, None)
        rec["readOnly"] = True
        assert who["Arn"] == resp["AssumedRoleUser"]["Arn"], who
        lookup.append({"EventId": rec["eventID"], "EventName": "GetCallerIdentity", "ReadOnly": "true",
                       "AccessKeyId": resp["Credentials"]["AccessKeyId"], "EventTime": rec["eventTime"],
                       "EventSource": "sts.amazonaws.com", "Username": instances["app-1"],
                       "Resources": [], "CloudTrailEvent": json.dumps(rec)})

        # alice -> pg-mgmt-role (security account), from the bastion.
        mgmt_arn = f"arn:aws:iam::{SEC_ACCOUNT}:role/pg-mgmt-role"
        t_mgmt = utc_now()
        alice_sts = moto.client("sts", alice_key["AccessKeyId"], alice_key["SecretAccessKey"])
        mgmt = alice_sts.assume_role(RoleArn=mgmt_arn, RoleSessionName="alice-mgmt", SourceIdentity="alice")
        alice_identity = {"type": "IAMUser", "principalId": alice_key["AccessKeyId"].replace("AKIA", "AIDA"),
                          "arn": f"arn:aws:iam::{SEC_ACCOUNT}:user/alice", "accountId": SEC_ACCOUNT,
                          "accessKeyId": alice_key["AccessKeyId"], "userName": "alice"}
        sec_trail.append(assume_role_record(t_mgmt, mgmt, role_arn=mgmt_arn, session_name="alice-mgmt",
                                            identity=alice_identity, ip=BASTION_IP,
                                            user_agent="aws-cli/2.22.0 Python/3.12 Linux",
                                            recipient=SEC_ACCOUNT, source_identity="alice"))
        time.sleep(1.1)
        # pg-mgmt-role session -> pg-monitor-role (application account): role chaining, cross-account.
        mon_arn = f"arn:aws:iam::{APP_ACCOUNT}:role/pg-monitor-role"
        t_mon = utc_now()
        mon = moto.as_creds("sts", mgmt["Credentials"]).assume_role(RoleArn=mon_arn, RoleSessionName="alice-monitor",
                                                                    SourceIdentity="alice")
        mgmt_identity = assumed_identity(mgmt, mgmt_arn, mgmt["Credentials"], t_mgmt, source_identity="alice")
        shared = str(uuid.uuid4())
        # Both accounts get a copy (same sharedEventID, different eventID).
        for trail, recipient in [(sec_trail, SEC_ACCOUNT), (app_trail, APP_ACCOUNT)]:
            trail.append(assume_role_record(t_mon, mon, role_arn=mon_arn, session_name="alice-monitor",
                                            identity=mgmt_identity, ip=BASTION_IP,
                                            user_agent="aws-cli/2.22.0 Python/3.12 Linux",
                                            recipient=recipient, source_identity="alice", shared=shared))

        # --- save the AWS inputs --------------------------------------------------------------
        aws = out / "aws"
        jdump(aws / "iam-authorization-app-account.json", strip_meta(iam.get_account_authorization_details()))
        jdump(aws / "iam-authorization-security-account.json",
              strip_meta(iam_b.get_account_authorization_details()))
        jdump(aws / "ec2-describe-instances.json", strip_meta(ec2.describe_instances()))
        jdump(aws / "ec2-describe-network-interfaces.json", strip_meta(ec2.describe_network_interfaces()))
        jdump(aws / "rds-describe-db-instances.json", strip_meta(rds.describe_db_instances()))
        (out / "aws-config.toml").write_text(
            "# pgtrail --aws-config for samples/iam (written by record.py from the moto responses)\n"
            "[[server]]\n"
            'match = "*iam*"\n'
            f'account_id = "{APP_ACCOUNT}"\n'
            f'region = "{REGION}"\n'
            f'db_resource_id = "{rid}"\n'
            'instance_id = "orders-db"\n'
            f'host = "{db["Endpoint"]["Address"]}"\n'
            f'port = {db["Endpoint"]["Port"]}\n')
        ct = out / "cloudtrail"
        key_dir = ct / f"AWSLogs/{APP_ACCOUNT}/CloudTrail/{REGION}/{t_app:%Y/%m/%d}"
        key_dir.mkdir(parents=True)
        stamp = utc_now().strftime("%Y%m%dT%H%MZ")
        name = f"{APP_ACCOUNT}_CloudTrail_{REGION}_{stamp}_pgtrailIAMsample.json.gz"
        with gzip.open(key_dir / name, "wt") as f:
            json.dump({"Records": app_trail}, f)
        digest_dir = ct / f"AWSLogs/{APP_ACCOUNT}/CloudTrail-Digest/{REGION}/{t_app:%Y/%m/%d}"
        digest_dir.mkdir(parents=True)
        with gzip.open(digest_dir / f"{APP_ACCOUNT}_CloudTrail-Digest_{REGION}_pgtrail_{REGION}_{stamp}.json.gz",
                       "wt") as f:
            json.dump({"awsAccountId": APP_ACCOUNT, "digestStartTime": ct_time(t_app),
                       "digestEndTime": ct_time(utc_now()), "digestS3Bucket": "trail-bucket",
                       "logFiles": [{"s3Bucket": "trail-bucket", "s3Object": name,
                                     "hashValue": "not-computed", "hashAlgorithm": "SHA-256"}]}, f)
        with open(ct / "security-account.jsonl", "w") as f:
            for r in sec_trail:
                f.write(json.dumps(r) + "\n")
        jdump(ct / "lookup-events.json", {"Events": lookup})

        # --- PostgreSQL side --------------------------------------------------------------------
        pgrec.install_pam()
        orig_setup = pgrec.setup_sql
        pgrec.setup_sql = lambda major: orig_setup(major) + [
            "CREATE ROLE iam_web LOGIN", "CREATE ROLE pgmonitor LOGIN", "CREATE ROLE iam_report LOGIN",
            "GRANT rds_iam TO iam_web", "GRANT rds_iam TO pgmonitor", "GRANT rds_iam TO iam_report"]
        src = "Debian postgresql-15 (" + pgrec.run([str(pgrec.DEBIAN_BIN / "postgres"), "--version"]).stdout.strip() + ")"
        cluster = pgrec.Cluster(name="iam", bindir=pgrec.DEBIAN_BIN, major=15, port=PG_PORT,
                                prefix=pgrec.RDS_PREFIX, destinations="stderr", pam=True, source=src)
        cluster.init()
        hba = "\n".join([
            "# pg_hba.conf written by samples/iam/record.py (pgtrail recording)",
            "local   all       postgres               trust",
            f"hostssl all       +rds_iam   127.0.0.0/24 pam pamservice={pgrec.PAM_SERVICE}",
            "host    all       all        127.0.0.0/24 password",
        ]) + "\n"
        (cluster.data / "pg_hba.conf").write_text(hba)
        cluster.start()
        attempts = []
        tok = lambda user, **kw: pgrec.iam_token(user, host="orders-db.example.rds.amazonaws.com", **kw)  # noqa: E731

        def attempt(scenario, ip, user, password, want_ok, expect, **extra):
            started = utc_now()
            r = pg_login(ip, user, "appdb", password)
            cluster.settle(0)
            a = {"attempt": len(attempts) + 1, "scenario": scenario, "client": ip, "user": user,
                 "database": "appdb", "outcome": "success" if r["ok"] else "failure",
                 "backend_pid": r["pid"], "error": r["error"], "started_at": pgrec.rfc3339(started)}
            a.update(expect)
            a.update(extra)
            if r["ok"] != want_ok:
                raise RuntimeError(f"{scenario}: client result {r} (wanted ok={want_ok})")
            attempts.append(a)
            time.sleep(1.1)

        app_key = sessions["app-1"][1]["Credentials"]["AccessKeyId"]
        attempt("app_instance_profile", APP_IP, "iam_app", tok("iam_app"), True,
                {"iam_match": "exact", "iam_principal": sessions["app-1"][1]["AssumedRoleUser"]["Arn"],
                 "iam_access_key_id": app_key})
        attempt("app_instance_bad_token", APP_IP, "iam_app", tok("iam_app", key=b"wrong-key"), False,
                {"iam_match": "exact", "iam_principal": sessions["app-1"][1]["AssumedRoleUser"]["Arn"],
                 "note": "a failed IAM login: who tried"})
        attempt("web_direct", WEB2_IP, "iam_web", tok("iam_web"), True,
                {"iam_match": "exact", "iam_principal": sessions["web-2"][1]["AssumedRoleUser"]["Arn"]})
        attempt("shared_role_via_proxy", PROXY_IP, "iam_web", tok("iam_web"), True,
                {"iam_match": "ambiguous", "iam_candidates": [sessions["web-1"][1]["AssumedRoleUser"]["Arn"],
                                                              sessions["web-2"][1]["AssumedRoleUser"]["Arn"]]})
        attempt("cross_account_monitor", BASTION_IP, "pgmonitor", tok("pgmonitor"), True,
                {"iam_match": "exact", "iam_principal": mon["AssumedRoleUser"]["Arn"],
                 "iam_source_account": SEC_ACCOUNT, "iam_source_identity": "alice",
                 "finding": "iam_cross_account_login"})
        attempt("token_from_unknown_address", UNKNOWN_IP, "iam_app", tok("iam_app"), True,
                {"iam_match": "none", "finding": "iam_unknown_address",
                 "note": "the only session allowed runs on app-1 (127.0.0.11): a copied token or stolen keys"})
        attempt("user_no_policy_allows", APP_IP, "iam_report", tok("iam_report", key=b"not-signed-by-a-principal-with-rds-db-connect"),
                False, {"iam_match": "none", "finding": "iam_login_no_policy",
                        "note": "the PAM refusal stands in for RDS refusing a token whose signer lacks rds-db:connect"})
        attempt("password_login", APP_IP, "app_scram", pgrec.PASSWORDS["app_scram"], True,
                {"iam_match": "not_applicable"})
        time.sleep(0.5)
        cluster.stop()
        time.sleep(0.3)
        shutil.copyfile(cluster.logdir / "postgresql.log", out / "postgresql.log")
        with open(out / "iam-ground-truth.jsonl", "w") as f:
            for a in attempts:
                f.write(json.dumps(a) + "\n")
        meta = {
            "server_version": cluster.version_string,
            "binaries": src,
            "log_line_prefix": pgrec.RDS_PREFIX,
            "pg_hba.conf": hba.splitlines(),
            "pam_service": Path(f"/etc/pam.d/{pgrec.PAM_SERVICE}").read_text().splitlines(),
            "moto": f"moto {moto_version}, boto3 {boto3.__version__}",
            "accounts": {"application": APP_ACCOUNT, "security": SEC_ACCOUNT},
            "region": REGION,
            "db_resource_id": rid,
            "instances": instances,
            "command": "python3 samples/iam/record.py",
            "recorded_at": pgrec.rfc3339(utc_now()),
        }
        jdump(out / "meta.json", meta)
        print(f"recorded {len(attempts)} attempts; resource id {rid}; instances {instances}")
        return 0
    finally:
        if cluster is not None:
            cluster.stop()
            cluster.cleanup()
        moto.stop()


def strip_meta(resp: dict) -> dict:
    resp = dict(resp)
    resp.pop("ResponseMetadata", None)
    return resp


if __name__ == "__main__":
    sys.exit(main())
