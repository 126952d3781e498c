// Package infra is the home of the pipeline's AWS adapters: awscfg builds SDK
// clients, dynamo and queue implement the stores and queues on
// aws-sdk-go-v2, and local runs the whole pipeline in one process on the
// kumo emulator.
package infra
