package aws

import (
	"context"
	"encoding/base64"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/fixfleet/fixfleet/providers"
)

// Screenshot implements providers.Screens with EC2's GetConsoleScreenshot
// (a JPEG, base64 in ImageData), in the non-mutating bucket. Errors:
// ErrNotFound; ErrConflict while the instance is not running
// (IncorrectInstanceState).
func (o observer) Screenshot(ctx context.Context, vm providers.VMRef) ([]byte, error) {
	const op = "GetConsoleScreenshot"
	res := "vm " + vm.String()
	rg, err := o.region(op, res, firstNonEmpty(vm.Region, vm.Zone))
	if err != nil {
		return nil, err
	}
	var out *ec2.GetConsoleScreenshotOutput
	err = o.call(ctx, rg, bucketNonMutating, op, res, func(ctx context.Context) (err error) {
		out, err = rg.ec2.GetConsoleScreenshot(ctx, &ec2.GetConsoleScreenshotInput{InstanceId: sdk.String(vm.ID)})
		return err
	})
	if err != nil {
		return nil, err
	}
	img, err := base64.StdEncoding.DecodeString(sdk.ToString(out.ImageData))
	if err != nil || len(img) == 0 {
		return nil, providers.Errorf(providers.ErrUnavailable, op, res, "the answer carries no image")
	}
	return img, nil
}
