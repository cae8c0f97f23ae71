// Setup for testdata/script/aws_iam.txtar, contributed by the fetch/awsiam owner.

package main

import (
	"os"
	"path/filepath"

	"github.com/phase-shim/phase-shim/fetch/awsiam/awstest"
	"github.com/phase-shim/phase-shim/fetch/phasetest"
	"github.com/rogpeppe/go-internal/testscript"
)

// setupAWSIAM turns on the emulator's AWS IAM login and starts loopback
// fakes of the AWS credential sources a script can point phase-shim at:
// environment keys, the full-URI agent (EKS Pod Identity), IMDSv2 and STS
// AssumeRoleWithWebIdentity, and the ECS agent (relative URI), which the
// binary reaches through the loopback-only PHASE_SHIM_TEST_ECS_CREDENTIALS_HOST.
// Variables: AWS_SA_ID, AWS_KEY_ID/AWS_KEY_SECRET (trusted),
// AWS_BAD_KEY_ID/AWS_BAD_KEY_SECRET (valid but untrusted), AWS_POD_URI,
// AWS_POD_TOKEN_FILE, AWS_IMDS_URL, AWS_JWT_FILE, AWS_ROLE, AWS_STS_URL,
// AWS_ECS_HOST, AWS_ECS_PATH.
func setupAWSIAM(e *testscript.Env, s *phasetest.Server) error {
	const acct = "arn:aws:sts::123456789012:assumed-role/"
	keys := awstest.Creds{AccessKeyID: "AKIASCRIPTKEYS000001", SecretAccessKey: "scriptEnvSecretKey0001"}
	bad := awstest.Creds{AccessKeyID: "AKIASCRIPTBAD0000002", SecretAccessKey: "scriptBadSecretKey0002"}
	pod := awstest.Creds{AccessKeyID: "ASIASCRIPTPOD0000003", SecretAccessKey: "scriptPodSecretKey0003", SessionToken: "scriptPodSessionToken0003"}
	ec2 := awstest.Creds{AccessKeyID: "ASIASCRIPTEC20000004", SecretAccessKey: "scriptEc2SecretKey0004", SessionToken: "scriptEc2SessionToken0004"}
	web := awstest.Creds{AccessKeyID: "ASIASCRIPTWEB0000005", SecretAccessKey: "scriptWebSecretKey0005", SessionToken: "scriptWebSessionToken0005"}
	task := awstest.Creds{AccessKeyID: "ASIASCRIPTECS0000006", SecretAccessKey: "scriptEcsSecretKey0006", SessionToken: "scriptEcsSessionToken0006"}
	const ecsPath = "/v2/credentials/5d3f2c1a-0000-4000-8000-000000000006"
	const podToken, jwt, role = "scriptPodAuthorizationToken", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzY3JpcHQifQ.c2ln", "arn:aws:iam::123456789012:role/shop-irsa-role"

	p := func(c awstest.Creds, arn string) phasetest.AWSPrincipal {
		return phasetest.AWSPrincipal{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, ARN: arn}
	}
	s.EnableAWSIAM(phasetest.AWSIAM{
		App: "shop",
		Principals: []phasetest.AWSPrincipal{
			p(keys, "arn:aws:iam::123456789012:user/ci"),
			p(bad, "arn:aws:iam::123456789012:user/intruder"),
			p(pod, acct+"shop-pod-role/eks-prod-shop-1"),
			p(ec2, acct+"shop-instance-role/i-0123456789abcdef0"),
			p(web, acct+"shop-irsa-role/phase-shim-1"),
			p(task, acct+"shop-task-role/5d3f2c1a"),
		},
		TrustedPrincipals: []string{"arn:aws:iam::123456789012:user/ci", acct + "shop-*-role/*"},
	})
	podSrv := awstest.StartContainer(e.Defer, "/v1/credentials", podToken, pod)
	imds := awstest.StartIMDS(e.Defer, "shop-instance-role", ec2)
	sts := awstest.StartSTS(e.Defer, role, jwt, web)
	ecs := awstest.StartContainer(e.Defer, ecsPath, "", task)

	write := func(name, content string) (string, error) {
		f := filepath.Join(e.WorkDir, name)
		return f, os.WriteFile(f, []byte(content), 0o600)
	}
	podFile, err := write("aws-pod-token", podToken+"\n")
	if err != nil {
		return err
	}
	jwtFile, err := write("aws-jwt", jwt+"\n")
	if err != nil {
		return err
	}
	for k, v := range map[string]string{
		"AWS_SA_ID":          s.AccountID("shop", phasetest.ServiceV2),
		"AWS_KEY_ID":         keys.AccessKeyID,
		"AWS_KEY_SECRET":     keys.SecretAccessKey,
		"AWS_BAD_KEY_ID":     bad.AccessKeyID,
		"AWS_BAD_KEY_SECRET": bad.SecretAccessKey,
		"AWS_POD_URI":        podSrv.FullURI(),
		"AWS_POD_TOKEN_FILE": podFile,
		"AWS_IMDS_URL":       imds.URL,
		"AWS_JWT_FILE":       jwtFile,
		"AWS_ROLE":           role,
		"AWS_STS_URL":        sts.URL,
		"AWS_ECS_HOST":       ecs.HostPort(),
		"AWS_ECS_PATH":       ecsPath,
	} {
		e.Setenv(k, v)
	}
	return nil
}
