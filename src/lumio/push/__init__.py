"""Push ingestion: platform callbacks (Twitch EventSub, Kick webhooks, YouTube WebSub) as hints."""
