// Package infra is the home of the pipeline's AWS adapters and of the local
// runtime that plays AWS: awscfg builds SDK clients; dynamo, queue and
// streams implement the stores, queues and stream reads on aws-sdk-go-v2;
// functions wires each Lambda function from them; local runs the whole
// pipeline in one process on the kumo emulator, and faults breaks its
// calls on purpose. Use cases live in votes/admin, tools and test support
// in votes/internal.
package infra
