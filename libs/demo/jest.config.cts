module.exports = {
  displayName: 'demo',
  preset: '../../jest.preset.js',
  testEnvironment: 'node',
  coverageDirectory: '../../coverage/libs/demo',
};
