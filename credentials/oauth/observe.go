package oauth

// observeCache tells ClientConfig.OnCache, when set, whether the cache
// answered a Token call.
func (c *Client) observeCache(hit bool) {
	if c.cfg.OnCache != nil {
		c.cfg.OnCache(hit)
	}
}
