#!/bin/sh
# azd postdeploy hook: subscribe the deployed Event Grid trigger to the ARM events of every
# subscription in scope (infra/eventgrid.bicep). It runs after the deploy because an event
# subscription can only point at a function that exists. Re-running it changes nothing.
set -eu

for name in AZURE_ENV_NAME AZURE_LOCATION EVENTGRID_SUBSCRIPTIONS EVENTGRID_FUNCTION_ID EVENTGRID_IDENTITY_ID \
  EVENTGRID_DEADLETTER_STORAGE_ID EVENTGRID_DEADLETTER_CONTAINER EVENTGRID_RESOURCE_GROUP EVENTGRID_TOPIC_NAME; do
  eval "value=\${$name:-}"
  if [ -z "$value" ]; then
    echo "postdeploy: $name is not set; run this hook through azd (azd up, or azd provision then azd deploy)" >&2
    exit 2
  fi
done

template="$(dirname "$0")/../eventgrid.bicep"

# Whether two "group<TAB>topic" pairs name the same topic (ARM names compare without case).
same_topic() {
  [ "$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" = "$(printf '%s' "$2" | tr '[:upper:]' '[:lower:]')" ]
}
deployment="aks-ssh-warden-events-$(printf '%s' "$AZURE_ENV_NAME" | cut -c1-40)"

for subscription in $(printf '%s' "$EVENTGRID_SUBSCRIPTIONS" | tr ',' ' '); do
  # Event Grid allows one system topic per source: use the subscription's own if it has one.
  existing=$(az eventgrid system-topic list --subscription "$subscription" \
    --query "[?topicType=='Microsoft.Resources.Subscriptions'] | [0].[resourceGroup, name]" --output tsv)
  group=$EVENTGRID_RESOURCE_GROUP
  topic=$EVENTGRID_TOPIC_NAME
  create=true
  if [ -n "$existing" ] && ! same_topic "$existing" "$group	$topic"; then
    # Another's topic: subscribe to it as it is (it has no identity of ours to dead-letter with).
    group=$(printf '%s\n' "$existing" | cut -f1)
    topic=$(printf '%s\n' "$existing" | cut -f2)
    create=false
  fi
  echo "postdeploy: ARM events of subscription $subscription (system topic $group/$topic) -> $EVENTGRID_FUNCTION_ID" >&2
  az deployment sub create --subscription "$subscription" --location "$AZURE_LOCATION" --name "$deployment" \
    --template-file "$template" --output none --parameters \
    location="$AZURE_LOCATION" resourceGroupName="$group" topicName="$topic" createTopic="$create" \
    functionResourceId="$EVENTGRID_FUNCTION_ID" eventsIdentityId="$EVENTGRID_IDENTITY_ID" \
    deadLetterStorageId="$EVENTGRID_DEADLETTER_STORAGE_ID" deadLetterContainer="$EVENTGRID_DEADLETTER_CONTAINER" \
    tags="{\"azd-env-name\": \"$AZURE_ENV_NAME\"}"
done
