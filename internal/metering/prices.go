package metering

// Prices are AWS list prices in US dollars, us-east-1. Source and date:
// docs/aws-prices.md (collected 2026-11-27).
type Prices struct {
	HTTPAPIPerMillion       float64 // API Gateway HTTP API requests
	LambdaRequestPerMillion float64
	LambdaGBSecondARM       float64
	SQSPerMillion           float64 // requests, per 64 KiB chunk
	DynamoWritePerMillion   float64 // on-demand write request units
	DynamoReadPerMillion    float64 // on-demand read request units
}

// ListPrices are the prices of docs/aws-prices.md. DynamoDB Streams reads
// by a Lambda trigger are free and not priced.
var ListPrices = Prices{
	HTTPAPIPerMillion:       1.00,
	LambdaRequestPerMillion: 0.20,
	LambdaGBSecondARM:       0.0000133334,
	SQSPerMillion:           0.40,
	DynamoWritePerMillion:   0.625,
	DynamoReadPerMillion:    0.125,
}

// Lambda is what one function was asked to do.
type Lambda struct {
	Invocations int64
	GBSeconds   float64
}

// Bill is the cost of a run, by service.
type Bill struct {
	APIGateway, Lambda, SQS, DynamoDB float64
}

// Total is the whole bill.
func (b Bill) Total() float64 { return b.APIGateway + b.Lambda + b.SQS + b.DynamoDB }

// Scale divides every line by n and multiplies it by per (dollars per
// `per` votes from a run of n votes).
func (b Bill) Scale(n, per float64) Bill {
	f := per / n
	return Bill{APIGateway: b.APIGateway * f, Lambda: b.Lambda * f, SQS: b.SQS * f, DynamoDB: b.DynamoDB * f}
}

// Price bills counted SDK calls, HTTP API requests and Lambda work.
func (p Prices) Price(c Counts, httpRequests int64, lambdas map[string]Lambda) Bill {
	var b Bill
	b.APIGateway = float64(httpRequests) * p.HTTPAPIPerMillion / 1e6
	for _, l := range lambdas {
		b.Lambda += float64(l.Invocations)*p.LambdaRequestPerMillion/1e6 + l.GBSeconds*p.LambdaGBSecondARM
	}
	b.SQS = float64(c.SQSUnits) * p.SQSPerMillion / 1e6
	b.DynamoDB = c.WCU*p.DynamoWritePerMillion/1e6 + c.RCU*p.DynamoReadPerMillion/1e6
	return b
}
