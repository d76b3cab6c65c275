"""An example Gakwaya plugin: greets an organization and counts the members it welcomed."""
