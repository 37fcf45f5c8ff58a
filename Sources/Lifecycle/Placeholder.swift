enum LifecyclePlaceholder {}
