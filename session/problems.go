package session

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow/types/events"
)

func reconnectFailedText(attempts int, err error) string {
	return fmt.Sprintf("wabot could not reach WhatsApp after %d attempts (last error: %v). Check that the server can reach the internet, then press Restart.", attempts, err)
}

const replacedText = "This WhatsApp link was opened by another wabot or WhatsApp Web session, which took it over. Close the other session, then press Restart here."

const outdatedText = "WhatsApp no longer accepts this version of wabot. Upgrade wabot to the newest release and restart the service; the link is kept."

func banText(e *events.TemporaryBan) string {
	until := "for a while"
	if e.Expire > 0 {
		until = "until " + time.Now().Add(e.Expire).UTC().Format("2006-01-02 15:04 UTC")
	}
	return fmt.Sprintf("WhatsApp has temporarily banned this number (%s) %s. Wait until then and press Restart; sending fewer unsolicited messages avoids bans.", e.Code, until)
}

func connectFailureText(e *events.ConnectFailure) string {
	return fmt.Sprintf("WhatsApp refused the connection (reason %d%s). Press Restart; if it happens again, reset the session and link the phone again.", int(e.Reason), optional(e.Message))
}

const loggedOutText = "The phone unlinked this device, or WhatsApp rejected the link. The device keys were deleted: open the link page and scan a new QR code."

func pairFailedText(err error) string {
	return fmt.Sprintf("Linking failed (%v). Press \"Get a new code\" and scan again with WhatsApp on your phone.", err)
}

func storeFailedText(err error) string {
	return fmt.Sprintf("wabot could not open this tenant's device store (%v). Check the disk and the sessions folder's permissions, then press Restart; if the store is damaged, Reset starts over with a new QR code.", err)
}

func optional(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
