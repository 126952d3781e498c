// Package deploy holds the checks of serverless.yml: its tests package it
// with the real Serverless Framework and hold the generated CloudFormation to
// the specs the code uses, so the deployment and the local stack cannot
// drift apart.
package deploy
