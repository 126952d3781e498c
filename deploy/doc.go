// Package deploy holds the checks of serverless.yml: its tests package it
// with the real Serverless Framework and hold the generated CloudFormation to
// the specs the code uses, so the deployment and the local stack cannot
// drift apart, and to the deployment's defences (the JWT authorizer, stage
// throttling, access logs, CORS). The directory also holds what
// serverless.yml includes: the alarms (alarms.yml) and check-auth.js, the
// local plugin that refuses a JWT authorizer without issuer or audience, and
// an ingest other than api or url.
package deploy
